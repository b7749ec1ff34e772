package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"
)

func newPortsCmd() *cobra.Command { return portsCommand(harness.PortLister{}) }

// portsCommand builds "hiltest ports" over a port lister; tests give it a
// lister with fixed port details, since ptys never show up in enumeration.
func portsCommand(lister harness.PortLister) *cobra.Command {
	var (
		include        []string
		asYAML, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ports [--include GLOB]... [--yaml | --json]",
		Short: "List serial ports and the board profiles they match",
		Long: `List the host's serial ports with their USB vendor/product IDs, serial
number and product string, and the built-in board profile each matches
(esp32-devkitc for CP210x 10c4:ea60, ch340, ch9102, ftdi, usb-serial-jtag
for the native USB of ESP32-S3/C3/C6).

Pseudo-terminals are never enumerated: --include GLOB adds paths that are,
or link to, character devices, such as the links of simulated boards
("hiltest sim" prints its link directory). A link with a control socket
beside it matches the "sim" profile.

When the host's ports cannot be enumerated (no /sys/class/tty, say, in a
container), the --include paths are still listed, with a warning on stderr;
without --include that is an error.

--yaml prints a draft bench inventory for the ports found; USB ports with
a serial number are matched by USB identity, so the entry survives
re-plugging into another socket.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asYAML && asJSON {
				return usageErr(fmt.Errorf("ports: --yaml and --json are exclusive"))
			}
			for _, g := range include {
				if _, err := filepath.Match(g, ""); err != nil {
					return usageErr(fmt.Errorf("ports: --include %q: %w", g, err))
				}
			}
			l := lister
			l.Include = append(append([]string(nil), l.Include...), include...)
			ports, err := l.List()
			switch {
			case err != nil && len(include) > 0 && errors.Is(err, harness.ErrEnumerate):
				// The included paths do not need enumeration: list them.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: ports: %v; listing the --include paths only\n", err)
			case err != nil:
				return failErr(fmt.Errorf("ports: %w", err))
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if ports == nil {
					ports = []harness.PortInfo{}
				}
				return enc.Encode(ports)
			case asYAML:
				_, err := out.Write(boards.DraftBench(draftBoards(ports)))
				return err
			}
			if len(ports) == 0 {
				fmt.Fprintln(out, "no serial ports found (ptys are not enumerated: use --include GLOB for simulator links)")
				return nil
			}
			return writePortsTable(out, ports)
		},
	}
	cmd.Flags().StringArrayVar(&include, "include", nil, "also list paths matching `GLOB` that are (or link to) character devices, e.g. simulator links")
	cmd.Flags().BoolVar(&asYAML, "yaml", false, "print a draft bench inventory for the ports found")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ports as JSON")
	return cmd
}

func writePortsTable(w io.Writer, ports []harness.PortInfo) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeader([]string{"port", "usb id", "serial", "product", "profile"}))
	for _, p := range ports {
		name := p.Name
		if p.Target != "" {
			name += " -> " + p.Target
		}
		id := ""
		if p.VID != "" || p.PID != "" {
			id = p.VID + ":" + p.PID
		}
		product := strings.TrimSpace(strings.Join([]string{p.Manufacturer, p.Product}, " "))
		profile := p.Profile
		if profile == "" {
			profile = "-"
		}
		if err := t.Append([]string{name, id, p.Serial, product, profile}); err != nil {
			return err
		}
	}
	return t.Render()
}

// draftBoards turns listed ports into bench entries named after their
// profile ("esp32-devkitc-1"), or after the port ("ttyUSB0", "sim-1") when
// it matches no USB profile.
func draftBoards(ports []harness.PortInfo) []boards.BenchBoard {
	var out []boards.BenchBoard
	used := map[string]bool{}
	perProfile := map[string]int{}
	for _, p := range ports {
		b := boards.BenchBoard{Profile: p.Profile, Port: p.Name}
		name := filepath.Base(p.Name)
		if p.Profile != "" && p.Profile != "sim" {
			perProfile[p.Profile]++
			name = fmt.Sprintf("%s-%d", p.Profile, perProfile[p.Profile])
		}
		for i := 2; used[name]; i++ {
			name = fmt.Sprintf("%s-%d", filepath.Base(p.Name), i)
		}
		used[name] = true
		b.Name = name
		if p.IsUSB && p.Serial != "" {
			b.USB = &boards.USBMatch{VID: p.VID, PID: p.PID, Serial: p.Serial}
		}
		out = append(out, b)
	}
	return out
}
