package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSimCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sim",
		Short: "Run simulated ESP32 boards on pseudo-terminals",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sim: not implemented yet")
		},
	}
}
