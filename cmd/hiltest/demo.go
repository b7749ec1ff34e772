package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

// DefaultAgentPath is where the host build of the C agent lands.
const DefaultAgentPath = "boards/esp32/host/build/hiltest-agent"

// demoFault is a simulated line fault the demo puts on one board, and how
// a run shows that the harness saw it.
type demoFault struct {
	name   string
	spec   string                            // sim fault spec
	expect string                            // what detection looks like
	seen   func(b *harness.BoardReport) bool // whether the run shows it
}

// demoFaults are the line-fault boards of the demo: noise and garbage on
// the line, corrupted and dropped bytes, a brownout reboot, the port
// vanishing.
var demoFaults = []demoFault{
	{"noise", "noise=0.5", "device output kept apart from frames",
		func(b *harness.BoardReport) bool { return b.Stats["junk_bytes"] > 0 }},
	{"corruption", "corrupt=0.05,drop=0.03", "bad CRCs or lost frames retried",
		func(b *harness.BoardReport) bool {
			return b.Stats["bad_crc"]+b.Stats["bad_frame"]+b.Stats["timeouts"] > 0
		}},
	{"brownout", "brownout=@DPS.REGISTER", "board reset during a case",
		func(b *harness.BoardReport) bool { return casesWith(b, "board reset during") > 0 }},
	{"port-loss", "unplug=@SAS", "port gone: re-opened or board lost",
		func(b *harness.BoardReport) bool { return b.Stats["reopens"] > 0 || casesWith(b, "board lost") > 0 }},
}

// casesWith counts the board's cases whose message starts with prefix.
func casesWith(b *harness.BoardReport, prefix string) int {
	n := 0
	for _, c := range b.Cases {
		if strings.HasPrefix(c.Message, prefix) {
			n++
		}
	}
	return n
}

type demoFlags struct {
	out         string
	healthy     int
	seed        int64
	agent       string
	only        string
	simBaud     int
	showSecrets bool
	noFaults    bool
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the full suite on a simulated bench against a mock DPS",
		Long: `demo needs no hardware. It starts a mock DPS over TLS with the demo enrollment
set, starts simulated ESP32 boards on pseudo-terminals — healthy boards in the
three SAS dialects, one board per seeded firmware bug, and boards with line
faults (noise, corruption, a brownout, port loss) — runs the built-in suite on
all of them in parallel, prints the results, writes reports to --out, and
explains each failure in one line.

It exits 0 when every healthy board passes and every seeded bug was caught
and named by its diagnosis, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", DefaultOutDir, "output directory for the reports")
	fl.IntVar(&f.healthy, "boards", 3, "number of healthy simulated boards (dialects in turn)")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the simulated faults and noise")
	fl.StringVar(&f.agent, "agent", "", "host build of the C agent to add as a board (default: "+DefaultAgentPath+" when built)")
	fl.StringVar(&f.only, "only", "", "run only cases whose ID matches")
	fl.IntVar(&f.simBaud, "sim-baud", 0, "pace simulated boards at this baud rate (0 = unpaced)")
	fl.BoolVar(&f.showSecrets, "show-secrets", false, "do not redact keys and signatures in reports")
	fl.BoolVar(&f.noFaults, "no-faults", false, "leave out the line-fault boards")
	return cmd
}

// demoRole says what a demo board is for.
type demoRole struct {
	bug   string // seeded bug, "" = none
	fault *demoFault
	agent bool
}

// demoBench builds the simulated bench.
func demoBench(f demoFlags) (*boards.Bench, map[string]demoRole) {
	bench := &boards.Bench{Path: "(demo)", DPS: boards.BenchDPS{Mode: "mock"}}
	roles := map[string]demoRole{}
	n := 0
	add := func(b boards.BenchBoard, r demoRole) {
		if b.Name == "" {
			n++
			b.Name = fmt.Sprintf("sim-%d", n)
		}
		if b.Profile == "" {
			b.Profile = "sim"
		}
		bench.Boards = append(bench.Boards, b)
		roles[b.Name] = r
	}
	dialects := reference.Dialects()
	for i := 0; i < f.healthy; i++ {
		d := string(dialects[i%len(dialects)])
		add(boards.BenchBoard{Dialect: d, Labels: []string{"healthy"}, Sim: &boards.SimSpec{Seed: f.seed + int64(i)}}, demoRole{})
	}
	for i, b := range sim.Bugs() {
		d := string(dialects[i%len(dialects)])
		add(boards.BenchBoard{Dialect: d, Labels: []string{"bug:" + b.Name}, Sim: &boards.SimSpec{Bug: b.Name, Seed: f.seed}}, demoRole{bug: b.Name})
	}
	if !f.noFaults {
		for i := range demoFaults {
			fa := &demoFaults[i]
			add(boards.BenchBoard{Dialect: string(reference.DialectDefault), Labels: []string{"fault:" + fa.name},
				Sim: &boards.SimSpec{Faults: fa.spec, Seed: f.seed + 100 + int64(i)}}, demoRole{fault: fa})
		}
	}
	agent := f.agent
	if agent == "" {
		if st, err := os.Stat(DefaultAgentPath); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			agent = DefaultAgentPath
		}
	}
	if agent != "" {
		add(boards.BenchBoard{Name: "agent-1", Dialect: string(reference.DialectDefault), Labels: []string{"agent", "host-build"},
			Sim: &boards.SimSpec{Agent: agent}}, demoRole{agent: true})
	}
	return bench, roles
}

func runDemo(cmd *cobra.Command, f demoFlags) error {
	if f.healthy < 0 {
		return usageErr(fmt.Errorf("demo: --boards must be 0 or more, got %d", f.healthy))
	}
	if f.agent != "" {
		if _, err := os.Stat(f.agent); err != nil {
			return usageErr(fmt.Errorf("demo: --agent: %w", err))
		}
	}
	cs, err := loadCases("")
	if err != nil {
		return failErr(err)
	}
	bench, roles := demoBench(f)
	ctx, cancel := signalContext(cmd)
	defer cancel()
	stderr := cmd.ErrOrStderr()
	out := cmd.OutOrStdout()
	n := 0
	for _, c := range cs {
		if harness.MatchCase(f.only, c.ID) {
			n++
		}
	}
	if n == 0 {
		return usageErr(fmt.Errorf("demo: no case matches --only %q", f.only))
	}
	prog := harness.NewProgress(stderr, harness.IsTerminal(stderr), n*len(bench.Boards))
	linkDir, err := makeLinkDir("hiltest-demo-")
	if err != nil {
		return failErr(err)
	}
	defer os.RemoveAll(linkDir)
	fmt.Fprintf(out, "hiltest demo: %d simulated boards against a mock DPS (seed %d)\n", len(bench.Boards), f.seed)
	start := time.Now()
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{
		SimBaud: f.simBaud, LinkDir: linkDir, ShowSecrets: f.showSecrets,
		MockOptions: mockdps.Options{Enrollments: mockdps.DemoEnrollments(), RetryAfter: 1},
		Logf:        func(format string, args ...any) { prog.Note(format, args...) },
	})
	if err != nil {
		return failErr(err)
	}
	defer bs.Close()
	rep, err := harness.Run(ctx, bs, harness.RunOptions{Cases: cs, Only: f.only, OutDir: f.out, ShowSecrets: f.showSecrets, Progress: prog})
	if err != nil && rep == nil {
		return failErr(err)
	}
	if terr := rep.WriteSummary(out, harness.TableOptions{ByBoard: true, MaxFailures: 1}); terr != nil {
		return failErr(terr)
	}
	ok := writeVerdicts(out, rep, roles)
	printReportPaths(out, f.out)
	fmt.Fprintf(out, "demo finished in %.1fs\n", time.Since(start).Seconds())
	if err != nil {
		return failErr(err)
	}
	if !ok {
		return failErr(nil)
	}
	return nil
}

// bugCauses maps each seeded bug of the simulator to words, one of which
// the diagnosis of at least one failing case on the bug's board must
// contain for the bug to count as named. Bugs missing here count as named
// when a case fails on their board with any diagnosis.
var bugCauses = map[string][]string{
	sim.BugGroupKeySigning:      {"signed with the group key", "group-key-used"},
	sim.BugDeriveFromBase64Text: {"base64 text", "group-key-not-decoded"},
	sim.BugSRNotEncoded:         {"sr not url-encoded", "sr-not-encoded", "unencoded resource"},
	sim.BugSigNotEncoded:        {"signature not url-encoded", "sig-not-encoded"},
	sim.BugMissingSKN:           {"missing skn", "wrong-skn"},
	sim.BugWrongResource:        {"wrong resource", "resource-mismatch"},
	sim.BugUnsetClockExpiry:     {"unset clock", "clock-not-set", "never set"},
	sim.BugWrongAPIVersion:      {"api-version"},
	sim.BugBodyIDMismatch:       {"registrationid", "registration-id-mismatch"},
	sim.BugIgnoreRetryAfter:     {"retry-after"},
	sim.BugTruncateKey64:        {"truncated"},
}

// BugNamed reports whether a failure on a board seeded with bug names it.
func bugNamed(bug string, results []harness.CaseResult) (bool, string) {
	words := bugCauses[bug]
	first := ""
	for _, c := range results {
		if c.Status != harness.StatusFail && c.Status != harness.StatusError {
			continue
		}
		text := strings.ToLower(c.Message + " " + strings.Join(c.Diagnoses(), " "))
		if first == "" {
			first = c.OneLine()
		}
		if len(words) == 0 && len(c.Diagnoses()) > 0 {
			return true, c.OneLine()
		}
		for _, w := range words {
			if strings.Contains(text, strings.ToLower(w)) {
				return true, c.OneLine()
			}
		}
	}
	return false, first
}

// writeVerdicts prints one line per board saying whether it did what the
// demo expects of it, and returns whether all healthy boards passed and
// every seeded bug was caught and named.
func writeVerdicts(w io.Writer, rep *harness.Report, roles map[string]demoRole) bool {
	ok := true
	fmt.Fprintln(w, "\nVerdicts:")
	names := make([]string, 0, len(rep.Boards))
	for _, b := range rep.Boards {
		names = append(names, b.Name)
	}
	sort.SliceStable(names, func(i, j int) bool { return boardNum(names[i]) < boardNum(names[j]) })
	// (agent-1 sorts last: boardNum puts names that are not sim-N at the end)
	for _, name := range names {
		b := rep.Board(name)
		r := roles[name]
		s := b.Summary
		counts := fmt.Sprintf("%d pass, %d fail, %d error, %d skip", s.Pass, s.Fail, s.Error, s.Skip)
		switch {
		case r.bug != "":
			named, line := bugNamed(r.bug, b.Cases)
			switch {
			case named:
				fmt.Fprintf(w, "  ok    %s (bug %s) caught and named: %s\n", name, r.bug, line)
			case line != "":
				ok = false
				fmt.Fprintf(w, "  FAIL  %s (bug %s) caught but not named: %s\n", name, r.bug, line)
			default:
				ok = false
				fmt.Fprintf(w, "  FAIL  %s (bug %s) NOT caught: %s\n", name, r.bug, counts)
			}
		case r.fault != nil:
			mark, what := "ok   ", "detected ("+r.fault.expect+")"
			if !r.fault.seen(b) {
				mark, what = "note ", "not seen in this run (faults fire at random)"
			}
			fmt.Fprintf(w, "  %s %s (fault %s: %s) %s: %s; %s\n", mark, name, r.fault.name, r.fault.spec, what, counts, faultEvidence(b))
		default:
			what := "healthy"
			if r.agent {
				what = "C agent"
			}
			if s.Fail+s.Error > 0 || b.SetupError != "" {
				ok = false
				fmt.Fprintf(w, "  FAIL  %s (%s, %s): %s\n", name, what, b.Declared.Dialect, counts)
			} else {
				fmt.Fprintf(w, "  ok    %s (%s, %s): %s\n", name, what, b.Declared.Dialect, counts)
			}
		}
	}
	if ok {
		fmt.Fprintln(w, "demo: PASS — healthy boards pass, every seeded bug was caught and named")
	} else {
		fmt.Fprintln(w, "demo: FAIL")
	}
	return ok
}

// faultEvidence summarises how the harness saw a fault board's faults.
func faultEvidence(b *harness.BoardReport) string {
	var parts []string
	for _, k := range []string{"junk_bytes", "log_lines", "bad_crc", "bad_frame", "retries", "timeouts", "resets", "reopens", "stale"} {
		if v := b.Stats[k]; v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	resets, lost := casesWith(b, "board reset during"), casesWith(b, "board lost")
	if resets > 0 {
		parts = append(parts, fmt.Sprintf("cases hit by a reset=%d", resets))
	}
	if lost > 0 {
		parts = append(parts, fmt.Sprintf("cases lost with the board=%d", lost))
	}
	parts = append(parts, fmt.Sprintf("faults injected=%d", len(b.Faults)))
	if b.SetupError != "" {
		parts = append(parts, "setup: "+b.SetupError)
	}
	return "harness saw: " + strings.Join(parts, ", ")
}

func boardNum(name string) int {
	var n int
	if _, err := fmt.Sscanf(name, "sim-%d", &n); err != nil {
		return 1 << 30
	}
	return n
}
