package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the hiltest version, Go version and VCS revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, _ := debug.ReadBuildInfo()
			fmt.Fprint(cmd.OutOrStdout(), versionText(bi))
			return nil
		},
	}
}

// versionText formats build information; missing parts (a build with
// -buildvcs=false has no revision) print as "unknown".
func versionText(bi *debug.BuildInfo) string {
	version, goVersion, rev, vcsTime, modified := "unknown", "unknown", "unknown", "", ""
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					rev = s.Value
				}
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	if vcsTime != "" {
		vcsTime = " " + vcsTime
	}
	return fmt.Sprintf("hiltest %s\ngo: %s\nrevision: %s%s%s\n", version, goVersion, rev, vcsTime, modified)
}
