package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDeriveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "derive",
		Short: "Derive a device key from a group enrollment key",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("derive: not implemented yet")
		},
	}
}
