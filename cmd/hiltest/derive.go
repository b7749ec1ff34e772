package main

import (
	"fmt"
	"strings"

	"github.com/hiltest/hiltest/reference"
	"github.com/spf13/cobra"
)

func newDeriveCmd() *cobra.Command {
	var groupKey, regID string
	cmd := &cobra.Command{
		Use:   "derive --group-key KEY --registration-id ID",
		Short: "Derive a device key from a group enrollment key",
		Long: `Derive the device key of a group (symmetric key) enrollment member:
base64(HMAC-SHA256(base64decode(group key), registration id)).
Prints the device key on one line.`,
		Example: `  hiltest derive --group-key "$GROUP_KEY" --registration-id sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refRequireFlags(cmd, "group-key", "registration-id"); err != nil {
				return err
			}
			key, err := reference.DeriveDeviceKey(groupKey, regID)
			if err != nil {
				return usageErr(fmt.Errorf("derive: %w", err))
			}
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	cmd.Flags().StringVar(&groupKey, "group-key", "", "group enrollment key (base64)")
	cmd.Flags().StringVar(&regID, "registration-id", "", "registration id of the device")
	return cmd
}

// refRequireFlags returns a usage error naming the first of names not given on
// the command line.
func refRequireFlags(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		if !cmd.Flags().Changed(n) {
			name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
			return usageErr(fmt.Errorf("%s: --%s is required (see %s --help)", name, n, cmd.CommandPath()))
		}
	}
	return nil
}
