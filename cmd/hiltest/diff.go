package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hiltest/hiltest/harness"
)

func newDiffCmd() *cobra.Command {
	var asJSON, requiredOnly bool
	cmd := &cobra.Command{
		Use:   "diff BASE.json RUN.json",
		Short: "Compare two run reports: regressions, fixes, changed outputs",
		Long: `diff compares two report.json files written by "hiltest run" or "hiltest demo",
board by board and case by case: new failures (regressions), fixes, cases
that fail differently, and outputs that changed (for example across firmware
versions or board revisions). It exits with status 1 when a case regressed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageErr(fmt.Errorf("diff: want BASE.json RUN.json, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			base, err := harness.ReadReport(args[0])
			if err != nil {
				return usageErr(err)
			}
			cur, err := harness.ReadReport(args[1])
			if err != nil {
				return usageErr(err)
			}
			d := harness.Diff(base, cur)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(d); err != nil {
					return failErr(err)
				}
			} else {
				d.Write(cmd.OutOrStdout())
			}
			if regs := d.Regressions(requiredOnly); len(regs) > 0 {
				return failErr(fmt.Errorf("%d regression(s)", len(regs)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the differences as JSON")
	cmd.Flags().BoolVar(&requiredOnly, "required-only", false, "count regressions of required (non-optional) cases only")
	return cmd
}
