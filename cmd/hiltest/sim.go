package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hiltest/hiltest/boards/sim"
	"github.com/spf13/cobra"
)

func newSimCmd() *cobra.Command {
	var (
		n        int
		baud     int
		seed     int64
		bugs     []string
		faults   []string
		dialects []string
		linkDir  string
		prefix   string
		listBugs bool
		runFor   time.Duration
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run simulated ESP32 boards on pseudo-terminals",
		Long: `Run N simulated ESP32 boards, each on its own pseudo-terminal with a stable
symlink <link-dir>/<name> and a control socket <link-dir>/<name>.ctl that
stands in for the DTR/RTS lines ("rts 1", "dtr 0", "reset", "unplug 2s",
"state"). Each board speaks the hiltest protocol v1 and runs until interrupted.

--bug, --fault and --dialect apply to every board, or to board K only when
prefixed with "K:" (boards are numbered from 1). --bug may repeat and takes
comma-separated names.

The process uses one Go scheduler P per board, at most one per CPU, unless
GOMAXPROCS is set: a board handles one request at a time, and more Ps only
add thread wake-ups to each request.

Fault spec:
` + sim.FaultSpecHelp,
		Example: `  hiltest sim --boards 3 --link-dir /tmp/bench
  hiltest sim --boards 2 --bug 2:sr-not-encoded --dialect 1:azure-sdk-for-c --fault "noise=0.2,corrupt=0.05"
  hiltest sim --list-bugs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if listBugs {
				for _, b := range sim.Bugs() {
					fmt.Fprintf(out, "%-24s %s\n", b.Name, b.Description)
				}
				return nil
			}
			if n < 1 || n > 256 {
				return usageErr(fmt.Errorf("sim: --boards %d: want 1..256", n))
			}
			if baud < 0 {
				return usageErr(fmt.Errorf("sim: --baud %d: want 0 (unpaced) or a positive rate", baud))
			}
			if linkDir == "" {
				d, err := os.MkdirTemp("", "hiltest-sim-")
				if err != nil {
					return failErr(fmt.Errorf("sim: %w", err))
				}
				defer os.RemoveAll(d)
				linkDir = d
			}
			errw := cmd.ErrOrStderr()
			cfgs := make([]sim.Config, n)
			for i := range cfgs {
				cfgs[i] = sim.Config{Name: fmt.Sprintf("%s-%d", prefix, i+1), LinkDir: linkDir, Seed: seed, Baud: baud}
				if !quiet {
					cfgs[i].Logf = func(format string, args ...any) { fmt.Fprintf(errw, format+"\n", args...) }
				}
			}
			if err := applyPerBoard("--bug", bugs, n, func(i int, v string) error {
				for _, name := range strings.Split(v, ",") {
					name = strings.TrimSpace(name)
					if name == "" {
						continue
					}
					if _, ok := sim.LookupBug(name); !ok {
						return fmt.Errorf("unknown bug %q (see hiltest sim --list-bugs)", name)
					}
					cfgs[i].Bugs = append(cfgs[i].Bugs, name)
				}
				return nil
			}); err != nil {
				return usageErr(err)
			}
			if err := applyPerBoard("--fault", faults, n, func(i int, v string) error {
				if _, err := sim.ParseFaults(v); err != nil {
					return err
				}
				if cfgs[i].Faults != "" {
					v = cfgs[i].Faults + "," + v
				}
				cfgs[i].Faults = v
				return nil
			}); err != nil {
				return usageErr(err)
			}
			if err := applyPerBoard("--dialect", dialects, n, func(i int, v string) error {
				ok := false
				for _, d := range sim.Dialects() {
					ok = ok || d == v
				}
				if !ok {
					return fmt.Errorf("unknown dialect %q (want one of %s)", v, strings.Join(sim.Dialects(), ", "))
				}
				cfgs[i].Dialect = v
				return nil
			}); err != nil {
				return usageErr(err)
			}
			for i := range cfgs {
				if _, err := sim.ParseFaults(cfgs[i].Faults); err != nil {
					return usageErr(fmt.Errorf("sim: board %d: %w", i+1, err))
				}
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if runFor > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, runFor)
				defer cancel()
			}
			limitProcs(n)
			boards, err := sim.StartBench(ctx, cfgs)
			if err != nil {
				return failErr(err)
			}
			defer func() {
				for _, b := range boards {
					b.Close()
				}
			}()
			for _, b := range boards {
				c := b.Config()
				bl := "-"
				if len(c.Bugs) > 0 {
					bl = strings.Join(c.Bugs, ",")
				}
				fl := "-"
				if f, _ := sim.ParseFaults(c.Faults); f.String() != "" {
					fl = f.String()
				}
				fmt.Fprintf(out, "%s\t%s\t%s\tctl=%s\tmac=%s\treg_id=%s\tdialect=%s\tbugs=%s\tfaults=%s\n",
					b.Name(), b.Path(), b.Link(), b.ControlPath(), b.MAC(), b.RegistrationID(), c.Dialect, bl, fl)
			}
			if runFor == 0 {
				fmt.Fprintln(errw, "hiltest sim: running; interrupt (Ctrl-C) to stop")
			}
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "boards", 1, "number of boards")
	f.IntVar(&baud, "baud", 0, "pace each board's output at BAUD/10 bytes/s (0 = unpaced)")
	f.Int64Var(&seed, "seed", 1, "seed for boot output, noise and faults")
	f.StringArrayVar(&bugs, "bug", nil, "seeded firmware bug(s): NAME[,NAME] for all boards or K:NAME[,NAME] for board K (repeatable)")
	f.StringArrayVar(&faults, "fault", nil, "fault spec for all boards, or K:SPEC for board K (repeatable)")
	f.StringArrayVar(&dialects, "dialect", nil, "SAS dialect (default, azure-sdk-for-c, azure-iot-sdk-c) for all boards or K:DIALECT")
	f.StringVar(&linkDir, "link-dir", "", "directory for the boards' symlinks and control sockets (default: a temporary directory)")
	f.StringVar(&prefix, "name", "sim", "board name prefix: boards are PREFIX-1 .. PREFIX-N")
	f.BoolVar(&listBugs, "list-bugs", false, "list the seeded firmware bugs and exit")
	f.DurationVar(&runFor, "for", 0, "stop after this long (0 = until interrupted)")
	f.BoolVar(&quiet, "quiet", false, "do not log faults on stderr")
	return cmd
}

// applyPerBoard applies each value to all boards, or to board K for "K:value".
func applyPerBoard(flag string, vals []string, n int, apply func(i int, v string) error) error {
	for _, v := range vals {
		target := -1
		if k, rest, ok := strings.Cut(v, ":"); ok && k != "" && strings.Trim(k, "0123456789") == "" {
			i, err := strconv.Atoi(k)
			if err != nil || i < 1 || i > n {
				return fmt.Errorf("sim: %s %q: board %s does not exist (boards are 1..%d)", flag, v, k, n)
			}
			target, v = i-1, rest
		}
		for i := 0; i < n; i++ {
			if target >= 0 && i != target {
				continue
			}
			if err := apply(i, v); err != nil {
				return fmt.Errorf("sim: %s %q: %w", flag, v, err)
			}
		}
	}
	return nil
}

// limitProcs caps the Go scheduler's Ps at n before "hiltest sim" starts n
// boards. A board's work runs one step at a time (its state machine hands
// each request to the next goroutine); Ps beyond one per board only add
// thread wake-ups to every request. main installs capProcs; tests that run
// the CLI in their own process keep their setting.
var limitProcs = func(n int) {}

// capProcs lowers GOMAXPROCS to n unless the environment sets it.
func capProcs(n int) {
	if os.Getenv("GOMAXPROCS") == "" && n < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
