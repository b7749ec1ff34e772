package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff",
		Short: "Compare two run reports",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("diff: not implemented yet")
		},
	}
}
