package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newPortsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ports",
		Short: "List serial ports and the board profiles they match",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("ports: not implemented yet")
		},
	}
}
