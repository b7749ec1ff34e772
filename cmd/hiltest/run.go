package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/cases"
	"github.com/hiltest/hiltest/harness"
)

// DefaultOutDir is where run and demo write their reports.
const DefaultOutDir = "hiltest-out"

type runFlags struct {
	bench       string
	casesDir    string
	only        string
	out         string
	baseline    string
	gate        bool
	showSecrets bool
	flash       bool
	timeout     time.Duration
	simBaud     int
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --bench bench.yaml",
		Short: "Run a suite on a bench of boards",
		Long: `run loads a bench file, brings up its DPS (a mock DPS, or the live one from
environment variables), starts the simulated boards it declares, opens a
session to every board, prepares each (clock, trust anchor, DPS endpoint,
Wi-Fi), and runs the suite on all boards in parallel. It prints a table of
board × case results and writes to the output directory:

  events.jsonl  one JSON line per finished case, written as the run goes
  report.json   the full report (firmware and board metadata, timing, outputs)
  junit.xml     one testsuite per board, for CI dashboards

Secrets (keys, signatures) are redacted unless --show-secrets.

A live DPS (dps: mode: live) takes its keys from the environment: the group
enrollment key from the variable the bench names in group_key_env (default
HILTEST_DPS_GROUP_KEY), an individual enrollment's key from device_key_env (default
HILTEST_DPS_KEY) with its registration id in HILTEST_DPS_REGISTRATION_ID, and
the trust anchor boards get from the PEM file in HILTEST_DPS_CA_FILE (unset:
boards keep their built-in anchors). Wi-Fi credentials come from the
variables named in the bench's wifi: section (default HILTEST_WIFI_SSID and
HILTEST_WIFI_PASSWORD); boards join only when the SSID is set.

With --flash, each board's flash command template ({port}, {firmware} and
{board} filled in) runs through sh -c first; its output and exit status go
into the report, a failed flash fails that board's suite, and the port is
opened again afterwards (USB-Serial-JTAG boards re-enumerate).

Exit status: 0 when the run completed (failures are in the table and the
reports); with --gate, 1 when a required (non-optional) case failed or
errored, or regressed against --baseline; 2 on bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bench, "bench", "", "bench file (YAML) listing the boards and the DPS")
	fl.StringVar(&f.casesDir, "cases", "", "directory of case files (default: the built-in suite)")
	fl.StringVar(&f.only, "only", "", "run only cases whose ID matches (glob like 'sas/*', or a substring; comma-separated)")
	fl.StringVar(&f.out, "out", DefaultOutDir, "output directory for events.jsonl, report.json and junit.xml")
	fl.StringVar(&f.baseline, "baseline", "", "report.json of an earlier run to compare with")
	fl.BoolVar(&f.gate, "gate", false, "release gate: exit 1 when a required case fails or regresses against --baseline")
	fl.BoolVar(&f.showSecrets, "show-secrets", false, "do not redact keys, signatures and tokens in reports")
	fl.BoolVar(&f.flash, "flash", false, "run each board's flash command before the suite")
	fl.DurationVar(&f.timeout, "timeout", harness.DefaultCaseTimeout, "default timeout of a case")
	fl.IntVar(&f.simBaud, "sim-baud", 0, "pace simulated boards at this baud rate (0 = the bench's, or unpaced)")
	return cmd
}

func loadCases(dir string) ([]harness.Case, error) {
	if dir == "" {
		cs, err := cases.Builtin()
		if err != nil {
			return nil, fmt.Errorf("built-in cases: %w", err)
		}
		return cs, nil
	}
	cs, err := cases.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("cases %s: %w", dir, err)
	}
	return cs, nil
}

// signalContext is cmd's context, cancelled on SIGINT or SIGTERM.
func signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func runRun(cmd *cobra.Command, f runFlags) error {
	if f.bench == "" {
		return usageErr(errors.New("run: --bench is required (see hiltest run --help)"))
	}
	bench, err := boards.LoadBench(f.bench)
	if err != nil {
		return usageErr(err)
	}
	cs, err := loadCases(f.casesDir)
	if err != nil {
		return usageErr(err)
	}
	n := 0
	for _, c := range cs {
		if harness.MatchCase(f.only, c.ID) {
			n++
		}
	}
	if n == 0 {
		return usageErr(fmt.Errorf("run: no case matches --only %q", f.only))
	}
	var base *harness.Report
	if f.baseline != "" {
		if base, err = harness.ReadReport(f.baseline); err != nil {
			return usageErr(err)
		}
	}
	ctx, cancel := signalContext(cmd)
	defer cancel()
	stderr := cmd.ErrOrStderr()
	prog := harness.NewProgress(stderr, harness.IsTerminal(stderr), n*len(bench.Boards))
	linkDir, err := makeLinkDir("hiltest-run-")
	if err != nil {
		return failErr(err)
	}
	defer os.RemoveAll(linkDir)
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{
		Flash: f.flash, ShowSecrets: f.showSecrets, SimBaud: f.simBaud, LinkDir: linkDir,
		Logf: func(format string, args ...any) { prog.Note(format, args...) },
	})
	if err != nil {
		return failErr(err)
	}
	defer bs.Close()
	rep, err := harness.Run(ctx, bs, harness.RunOptions{
		Cases: cs, Only: f.only, DefaultTimeout: f.timeout, OutDir: f.out, ShowSecrets: f.showSecrets, Progress: prog,
	})
	if err != nil && rep == nil {
		return failErr(err)
	}
	out := cmd.OutOrStdout()
	if terr := rep.WriteTable(out); terr != nil {
		return failErr(terr)
	}
	printReportPaths(out, f.out)
	if err != nil {
		return failErr(err)
	}
	return gate(out, rep, base, f.gate)
}

// makeLinkDir makes the one directory a run's simulated boards share for
// their port symlinks and control sockets, in os.TempDir() (unix socket
// paths must stay short, which a deep output directory might not). The
// caller removes it when the run ends; a run killed with SIGKILL leaves
// this one directory behind.
func makeLinkDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("directory for simulated boards' ports: %w", err)
	}
	return dir, nil
}

func printReportPaths(w io.Writer, dir string) {
	fmt.Fprintf(w, "\nreports: %s, %s, %s\n", filepath.Join(dir, harness.ReportFile),
		filepath.Join(dir, harness.JUnitFile), filepath.Join(dir, harness.EventsFile))
}

// gate compares with the baseline (when given) and applies the release
// gate: required cases must not fail, error or regress.
func gate(w io.Writer, rep, base *harness.Report, enforce bool) error {
	var regs []harness.CaseChange
	if base != nil {
		d := harness.Diff(base, rep)
		fmt.Fprintln(w, "\nCompared with the baseline:")
		d.Write(w)
		regs = d.Regressions(true)
	}
	if !enforce {
		return nil
	}
	failed := rep.Summary.Failed
	if failed == 0 && len(regs) == 0 {
		fmt.Fprintln(w, "gate: pass")
		return nil
	}
	return failErr(fmt.Errorf("gate: %d required case(s) failed, %d regression(s) against the baseline", failed, len(regs)))
}
