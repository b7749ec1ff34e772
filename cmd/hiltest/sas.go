package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSASCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sas",
		Short: "Build or check a DPS SAS token",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sas: not implemented yet")
		},
	}
}
