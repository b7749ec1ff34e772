package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDPSCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dps",
		Short: "Run or load-test the mock Device Provisioning Service",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("dps: not implemented yet")
		},
	}
}
