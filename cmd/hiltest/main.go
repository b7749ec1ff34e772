// Command hiltest runs hardware-in-the-loop suites against ESP32 boards that
// provision themselves into Azure IoT through the Device Provisioning Service,
// and offers the building blocks (key derivation, SAS tokens, a mock DPS, a
// simulated board) as subcommands for debugging by hand.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"
)

// defaultMemProfileRate is the runtime's default heap sampling rate.
const defaultMemProfileRate = 512 * 1024

func main() {
	// Heap profiling is off unless a command asks for a profile: its
	// sampling buckets cost a few megabytes on a large bench.
	runtime.MemProfileRate = 0
	limitProcs = capProcs
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI with args and returns the process exit status:
// 0 success, 1 a check that ran and failed, 2 bad usage or bad input.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "hiltest: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "hiltest: %v\n", err)
	return 2
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "hiltest",
		Short: "Hardware-in-the-loop tests for ESP32 boards provisioning into Azure IoT DPS",
		Long: `hiltest talks to one or many ESP32 boards over serial with a framed line
protocol, has each board derive keys, sign SAS tokens and send DPS requests,
and compares every result byte for byte with a Go reference implementation
and with a live or mock Device Provisioning Service.

Start with "hiltest demo": it runs the whole suite on a simulated bench
against a mock DPS, with no hardware.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath()))
	})
	root.AddCommand(
		newVersionCmd(),
		newDeriveCmd(),
		newSASCmd(),
		newDPSCmd(),
		newSimCmd(),
		newPortsCmd(),
		newRunCmd(),
		newDiffCmd(),
		newDemoCmd(),
		newBenchCmd(),
	)
	return root
}

// exitError carries the exit status a command wants. A nil err prints nothing.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as bad usage or bad input (exit status 2).
func usageErr(err error) error { return &exitError{code: 2, err: err} }

// failErr marks err as a check that ran and failed (exit status 1).
func failErr(err error) error { return &exitError{code: 1, err: err} }
