package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
)

// DefaultPyserialScript is the pyserial comparison script, relative to the
// repository root.
const DefaultPyserialScript = "bench/pyserial_ping.py"

type benchFlags struct {
	pings      int
	payload    string
	boards     int
	baud       int
	script     string
	python     string
	only       string
	skip       []string
	jsonOut    string
	cpuprof    string
	memprof    string
	reports    string
	simProcess bool
	// pingInline runs the ping measurement's simulated board in this
	// process instead of a child process.
	pingInline bool
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure harness throughput and scaling",
		Long: `bench measures, side by side in one run, on simulated boards:

  ping     PING round trips per second through a harness session, through a
           bare go.bug.st/serial write/read loop, and through the usual pyserial
           write+readline script (bench/pyserial_ping.py, when python3 has pyserial),
           all three to the same unpaced simulated board in a "hiltest sim"
           child process (--ping-sim-inline: in this process); 7 rounds, each
           measuring the three back to back, and the ratios are the medians
           of the rounds' ratios
  wire     the full suite's wall time on one board at --baud (the simulator
           paces its output, a counting proxy paces the host's bytes) against
           the bytes-on-wire lower bound (bytes both ways / (baud/10) bytes per second)
  scale    the full suite on 1 board and on --boards boards (paced at --baud):
           wall time ratio and the process's peak RSS (VmHWM; the simulated
           boards run in this process and are included)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.pings, "pings", 35000, "PING round trips per way of talking to the board, split over the rounds")
	fl.StringVar(&f.payload, "payload", "hello board", "PING payload")
	fl.IntVar(&f.boards, "boards", 32, "boards of the scaling measurement")
	fl.IntVar(&f.baud, "baud", 115200, "simulated baud rate of the wire and scale measurements")
	fl.StringVar(&f.script, "pyserial-script", DefaultPyserialScript, "pyserial comparison script")
	fl.StringVar(&f.python, "python", "", "python interpreter (default: the first of python3, /usr/bin/python3 that imports serial)")
	fl.StringVar(&f.only, "only", "", "suite cases of the wire and scale measurements (default: all)")
	fl.StringSliceVar(&f.skip, "skip", nil, "measurements to skip: ping, wire, scale")
	fl.StringVar(&f.jsonOut, "json", "", "also write the figures as JSON to this file")
	fl.StringVar(&f.cpuprof, "cpuprofile", "", "write a CPU profile of the measurements to this file")
	fl.BoolVar(&f.simProcess, "sim-process", true, "also measure the scaling run with the simulated boards in a child process (hiltest sim)")
	fl.BoolVar(&f.pingInline, "ping-sim-inline", false, "run the ping measurement's simulated board in this process (default: a hiltest sim child process, like a real board it then shares no scheduler with the host code)")
	fl.StringVar(&f.memprof, "memprofile", "", "write a heap profile (after the measurements) to this file")
	fl.StringVar(&f.reports, "reports", "", "write the reports of the suite runs under this directory (wire, scale-1, scale-N)")
	return cmd
}

// benchFigures are the results.
type benchFigures struct {
	PingPayload      string  `json:"ping_payload"`
	SessionPingRate  float64 `json:"session_ping_per_s,omitempty"`
	BarePingRate     float64 `json:"bare_ping_per_s,omitempty"`
	PyserialPingRate float64 `json:"pyserial_ping_per_s,omitempty"`
	Pyserial         string  `json:"pyserial,omitempty"` // interpreter used, or why unavailable
	// The ratios are medians of the ratios within each round, whose
	// measurements run back to back: a change in the machine's speed
	// between rounds does not move them.
	SessionBareRatio     float64 `json:"session_bare_ratio,omitempty"`
	SessionPyserialRatio float64 `json:"session_pyserial_ratio,omitempty"`

	Baud            int     `json:"baud,omitempty"`
	SuiteCases      int     `json:"suite_cases,omitempty"`
	SuiteWallS      float64 `json:"suite_wall_s,omitempty"`
	WireToBoard     int64   `json:"wire_bytes_to_board,omitempty"`
	WireFromBoard   int64   `json:"wire_bytes_from_board,omitempty"`
	WireLowerBoundS float64 `json:"wire_lower_bound_s,omitempty"`
	// FromBoardBoundS is the bound of the board→host bytes alone (a UART
	// is full duplex: this is the bound when the directions overlap).
	FromBoardBoundS float64 `json:"wire_from_board_bound_s,omitempty"`

	ScaleBoards int     `json:"scale_boards,omitempty"`
	OneWallS    float64 `json:"one_board_wall_s,omitempty"`
	ManyWallS   float64 `json:"many_boards_wall_s,omitempty"`
	OneSetupS   float64 `json:"one_board_setup_s,omitempty"`
	ManySetupS  float64 `json:"many_boards_setup_s,omitempty"`
	OnePeakRSS  int64   `json:"one_board_peak_rss,omitempty"`
	ManyPeakRSS int64   `json:"many_boards_peak_rss,omitempty"`
	ManyResults string  `json:"many_boards_results,omitempty"`

	// The same with the simulated boards in a child process: the peak
	// RSS is then the harness's and the mock DPS's alone.
	ExternalWallS   float64 `json:"external_sims_wall_s,omitempty"`
	ExternalPeakRSS int64   `json:"external_sims_peak_rss,omitempty"`
	ExternalResults string  `json:"external_sims_results,omitempty"`
	ExternalNote    string  `json:"external_sims_note,omitempty"`
}

func skipped(list []string, name string) bool {
	for _, s := range list {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return true
		}
	}
	return false
}

func runBench(cmd *cobra.Command, f benchFlags) error {
	if f.pings <= 0 || f.boards <= 0 || f.baud < 0 {
		return usageErr(errors.New("bench: --pings and --boards must be positive, --baud 0 or more"))
	}
	for _, s := range f.skip {
		switch strings.TrimSpace(s) {
		case "ping", "wire", "scale":
		default:
			return usageErr(fmt.Errorf("bench: --skip: unknown measurement %q (ping, wire, scale)", s))
		}
	}
	if f.memprof != "" {
		// main turns heap sampling off; a heap profile needs it back on.
		runtime.MemProfileRate = defaultMemProfileRate
	}
	ctx, cancel := signalContext(cmd)
	defer cancel()
	out := cmd.OutOrStdout()
	errw := cmd.ErrOrStderr()
	dir, err := os.MkdirTemp("", "hiltest-bench-")
	if err != nil {
		return failErr(err)
	}
	defer os.RemoveAll(dir)
	if f.cpuprof != "" {
		pf, err := os.Create(f.cpuprof)
		if err != nil {
			return usageErr(fmt.Errorf("bench: --cpuprofile: %w", err))
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return failErr(err)
		}
		defer pprof.StopCPUProfile()
	}
	fig := benchFigures{PingPayload: f.payload}
	if !skipped(f.skip, "ping") {
		fmt.Fprintln(errw, "bench: ping round trips (session, bare port, pyserial)...")
		if err := benchPing(ctx, f, dir, &fig); err != nil {
			return failErr(err)
		}
	}
	var cs []harness.Case
	if !skipped(f.skip, "wire") || !skipped(f.skip, "scale") {
		all, err := loadCases("")
		if err != nil {
			return failErr(err)
		}
		for _, c := range all {
			if harness.MatchCase(f.only, c.ID) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return usageErr(fmt.Errorf("bench: no case matches --only %q", f.only))
		}
		fig.SuiteCases = len(cs)
	}
	if !skipped(f.skip, "wire") {
		fmt.Fprintf(errw, "bench: full suite on one board at %d baud, bytes on the wire...\n", f.baud)
		if err := benchWire(ctx, f, cs, dir, &fig); err != nil {
			return failErr(err)
		}
	}
	if !skipped(f.skip, "scale") {
		fmt.Fprintf(errw, "bench: full suite on 1 and %d boards at %d baud...\n", f.boards, f.baud)
		if err := benchScale(ctx, f, cs, dir, &fig); err != nil {
			return failErr(err)
		}
	}
	if f.memprof != "" {
		pf, err := os.Create(f.memprof)
		if err != nil {
			return usageErr(fmt.Errorf("bench: --memprofile: %w", err))
		}
		if err := pprof.Lookup("allocs").WriteTo(pf, 0); err != nil {
			pf.Close()
			return failErr(err)
		}
		pf.Close()
	}
	writeFigures(out, fig)
	if f.jsonOut != "" {
		data, _ := json.MarshalIndent(fig, "", "  ")
		if err := os.WriteFile(f.jsonOut, append(data, '\n'), 0o644); err != nil {
			return failErr(err)
		}
	}
	return nil
}

// pingRounds is how many alternating session / bare-port batches the ping
// measurement runs; each figure is the median of its batches, so a burst of
// load from elsewhere on the machine skews one batch, not the comparison.
const pingRounds = 7

// benchPing measures PING rates on one unpaced simulated board. The
// board runs in a "hiltest sim" child process unless f.pingInline: a real
// board is separate hardware, and a board in this process would share the
// CPUs and the Go scheduler with the host code being measured (while the
// pyserial script runs in its own process). Each round measures the three
// ways back to back, in reverse order every other round.
func benchPing(ctx context.Context, f benchFlags, dir string, fig *benchFigures) error {
	var port string
	if f.pingInline {
		b, err := sim.Start(ctx, sim.Config{Name: "bench-ping", LinkDir: dir})
		if err != nil {
			return fmt.Errorf("bench: start simulated board: %w", err)
		}
		defer b.Close()
		port = b.Link()
	} else {
		ext, stop, err := startSimProcess(ctx, 1, 0, filepath.Join(dir, "ping"))
		if err != nil {
			return fmt.Errorf("bench: ping: %w", err)
		}
		defer stop()
		port = ext.Boards[0].Port
	}
	payload := []byte(f.payload)
	prof, _ := boards.LookupProfile("sim")
	per := max(1, f.pings/pingRounds)
	warm := min(200, per)
	py := pyserialFor(f, fig)
	var sessionRates, bareRates, pyRates, bareRatios, pyRatios []float64
	session := func() (float64, error) {
		s, err := harness.Open(ctx, harness.SessionConfig{Name: "bench-ping", Port: port, Profile: prof})
		if err != nil {
			return 0, fmt.Errorf("bench: open session: %w", err)
		}
		defer s.Close()
		if _, err := harness.PingBoard(ctx, s, warm, payload); err != nil {
			return 0, fmt.Errorf("bench: session ping: %w", err)
		}
		r, err := harness.PingBoard(ctx, s, per, payload)
		if err != nil {
			return 0, fmt.Errorf("bench: session ping: %w", err)
		}
		return r.Rate(), nil
	}
	bare := func() (float64, error) {
		if _, err := harness.PingPort(ctx, port, warm, payload); err != nil {
			return 0, fmt.Errorf("bench: bare ping: %w", err)
		}
		r, err := harness.PingPort(ctx, port, per, payload)
		if err != nil {
			return 0, fmt.Errorf("bench: bare ping: %w", err)
		}
		return r.Rate(), nil
	}
	pyserial := func() (float64, error) {
		if py == "" {
			return 0, nil
		}
		rate, err := pyserialPing(ctx, py, f.script, port, per, f.payload)
		if err != nil {
			fig.Pyserial = fmt.Sprintf("failed: %v", err)
			py = ""
			pyRates, pyRatios = nil, nil
			return 0, nil
		}
		return rate, nil
	}
	ways := [3]func() (float64, error){session, bare, pyserial}
	for round := 0; round < pingRounds; round++ {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			order = []int{2, 1, 0}
		}
		var rates [3]float64
		for _, i := range order {
			rate, err := ways[i]()
			if err != nil {
				return err
			}
			rates[i] = rate
		}
		sr, br, pr := rates[0], rates[1], rates[2]
		sessionRates = append(sessionRates, sr)
		bareRates = append(bareRates, br)
		bareRatios = append(bareRatios, sr/br)
		if py != "" && pr > 0 {
			pyRates = append(pyRates, pr)
			pyRatios = append(pyRatios, sr/pr)
		}
	}
	fig.SessionPingRate = median(sessionRates)
	fig.BarePingRate = median(bareRates)
	fig.SessionBareRatio = median(bareRatios)
	if len(pyRates) > 0 {
		fig.PyserialPingRate = median(pyRates)
		fig.SessionPyserialRatio = median(pyRatios)
	}
	return nil
}

// pyserialFor returns the python interpreter of the pyserial comparison,
// or "" with the reason in fig.Pyserial.
func pyserialFor(f benchFlags, fig *benchFigures) string {
	py := f.python
	if py == "" {
		py = findPyserial()
	}
	if py == "" {
		fig.Pyserial = "unavailable: no python3 with pyserial (apt-get install python3-serial)"
		return ""
	}
	if _, err := os.Stat(f.script); err != nil {
		fig.Pyserial = fmt.Sprintf("unavailable: script %s: %v (run from the repository root or pass --pyserial-script)", f.script, err)
		return ""
	}
	fig.Pyserial = py
	return py
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// findPyserial returns a python interpreter that can import serial, or "".
func findPyserial() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if err := exec.Command(py, "-c", "import serial").Run(); err == nil {
			return py
		}
	}
	return ""
}

func pyserialPing(ctx context.Context, py, script, port string, n int, payload string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var stderr strings.Builder
	c := exec.CommandContext(ctx, py, script, port, fmt.Sprint(n), payload)
	c.Stderr = &stderr
	o, err := c.Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	var res struct {
		Rate float64 `json:"rate"`
	}
	if err := json.Unmarshal(o, &res); err != nil {
		return 0, fmt.Errorf("%s: output %q: %w", script, o, err)
	}
	return res.Rate, nil
}

// simBench is a bench of n simulated boards.
func simBench(n int) *boards.Bench {
	b := &boards.Bench{Path: "(bench)", DPS: boards.BenchDPS{Mode: "mock"}}
	dialects := []string{"default", "azure-sdk-for-c", "azure-iot-sdk-c"}
	for i := 0; i < n; i++ {
		b.Boards = append(b.Boards, boards.BenchBoard{Name: fmt.Sprintf("sim-%d", i+1), Profile: "sim",
			Dialect: dialects[i%len(dialects)], Sim: &boards.SimSpec{Seed: int64(i + 1)}})
	}
	return b
}

// runSuite brings up a bench of simulated boards, runs the cases and
// returns the report, the bring-up time and the run time. hook adjusts
// session configurations; beforeRun (optional) is called between bring-up
// and run.
func runSuite(ctx context.Context, bench *boards.Bench, baud int, cs []harness.Case, dir, outDir string, hook func(*harness.SessionConfig), beforeRun func()) (*harness.Report, time.Duration, time.Duration, error) {
	start := time.Now()
	bs, err := harness.OpenBench(ctx, bench, harness.BenchOptions{
		SimBaud: baud, LinkDir: dir, Session: hook,
		MockOptions: mockdps.Options{Enrollments: mockdps.DemoEnrollments(), RetryAfter: mockdps.RetryImmediately},
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("bench: %w", err)
	}
	defer bs.Close()
	for _, m := range bs.Boards {
		if m.SetupErr != nil {
			return nil, 0, 0, fmt.Errorf("bench: board %s: %w", m.Decl.Name, m.SetupErr)
		}
	}
	setup := time.Since(start)
	if beforeRun != nil {
		beforeRun()
	}
	runStart := time.Now()
	rep, err := harness.Run(ctx, bs, harness.RunOptions{Cases: cs, OutDir: outDir})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("bench: %w", err)
	}
	return rep, setup, time.Since(runStart), nil
}

// benchWire runs the suite on one paced board behind a byte-counting proxy.
func benchWire(ctx context.Context, f benchFlags, cs []harness.Case, dir string, fig *benchFigures) error {
	var mu sync.Mutex
	var proxies []*harness.WireProxy
	var proxyErr error
	hook := func(cfg *harness.SessionConfig) {
		p, err := harness.StartWireProxy(cfg.Port, dir, cfg.Name+"-wire", f.baud)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			proxyErr = err
			return
		}
		proxies = append(proxies, p)
		cfg.Port = p.Path()
	}
	defer func() {
		for _, p := range proxies {
			p.Close()
		}
	}()
	var before [2]int64
	rep, _, wall, err := runSuite(ctx, simBench(1), f.baud, cs, dir, reportDir(f, "wire"), hook, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range proxies {
			before[0], before[1] = p.Bytes()
		}
	})
	if proxyErr != nil {
		return fmt.Errorf("bench: %w", proxyErr)
	}
	if err != nil {
		return err
	}
	var to, from int64
	for _, p := range proxies {
		to, from = p.Bytes()
	}
	fig.Baud = f.baud
	fig.SuiteWallS = wall.Seconds()
	fig.WireToBoard = to - before[0]
	fig.WireFromBoard = from - before[1]
	if f.baud > 0 {
		fig.WireLowerBoundS = float64(fig.WireToBoard+fig.WireFromBoard) / (float64(f.baud) / 10)
		fig.FromBoardBoundS = float64(fig.WireFromBoard) / (float64(f.baud) / 10)
	}
	if rep.Summary.Fail+rep.Summary.Error > 0 {
		fmt.Fprintf(os.Stderr, "bench: note: %d case(s) failed or errored on the healthy board\n", rep.Summary.Fail+rep.Summary.Error)
	}
	return nil
}

// reportDir is where a suite run of the bench writes its reports ("" = nowhere).
func reportDir(f benchFlags, name string) string {
	if f.reports == "" {
		return ""
	}
	return filepath.Join(f.reports, name)
}

// benchScale runs the suite on 1 and on many boards, simulated in this
// process; then on many boards simulated by a "hiltest sim" child process,
// so that the peak RSS is the harness's (and the mock DPS's) alone.
func benchScale(ctx context.Context, f benchFlags, cs []harness.Case, dir string, fig *benchFigures) error {
	fig.ScaleBoards = f.boards
	measure := func(bench *boards.Bench, name string) (*harness.Report, time.Duration, time.Duration, int64, error) {
		debug.FreeOSMemory()
		_ = harness.ResetPeakRSS()
		rep, setup, wall, err := runSuite(ctx, bench, f.baud, cs, dir, reportDir(f, name), nil, nil)
		if err != nil {
			return nil, 0, 0, 0, err
		}
		rss, err := harness.PeakRSS()
		if err != nil {
			return nil, 0, 0, 0, err
		}
		return rep, setup, wall, rss, nil
	}
	_, setup1, wall1, rss1, err := measure(simBench(1), "scale-1")
	if err != nil {
		return err
	}
	// Child-process sims first, so the in-process run's heap does not
	// linger in this measurement.
	if f.simProcess {
		if err := measureExternal(ctx, f, dir, fig, measure); err != nil {
			return err
		}
	}
	repN, setupN, wallN, rssN, err := measure(simBench(f.boards), fmt.Sprintf("scale-%d", f.boards))
	if err != nil {
		return err
	}
	fig.OneWallS, fig.OneSetupS, fig.OnePeakRSS = wall1.Seconds(), setup1.Seconds(), rss1
	fig.ManyWallS, fig.ManySetupS, fig.ManyPeakRSS = wallN.Seconds(), setupN.Seconds(), rssN
	s := repN.Summary
	fig.ManyResults = fmt.Sprintf("%d pass, %d fail, %d error, %d skip", s.Pass, s.Fail, s.Error, s.Skip)
	return nil
}

// measureExternal runs the scaling suite on boards simulated by a child process.
func measureExternal(ctx context.Context, f benchFlags, dir string, fig *benchFigures,
	measure func(*boards.Bench, string) (*harness.Report, time.Duration, time.Duration, int64, error)) error {
	ext, stop, err := startSimProcess(ctx, f.boards, f.baud, filepath.Join(dir, "ext"))
	if err != nil {
		fig.ExternalNote = err.Error()
		return nil
	}
	defer stop()
	rep, _, wall, rss, err := measure(ext, fmt.Sprintf("scale-%d-external", f.boards))
	if err != nil {
		return err
	}
	s := rep.Summary
	fig.ExternalWallS, fig.ExternalPeakRSS = wall.Seconds(), rss
	fig.ExternalResults = fmt.Sprintf("%d pass, %d fail, %d error, %d skip", s.Pass, s.Fail, s.Error, s.Skip)
	return nil
}

// startSimProcess runs "hiltest sim" with n boards in a child process and
// returns a bench of its boards (ports and control sockets in dir).
func startSimProcess(ctx context.Context, n, baud int, dir string) (*boards.Bench, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("simulated boards in a child process: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("simulated boards in a child process: %w", err)
	}
	cmd := exec.Command(exe, "sim", "--boards", fmt.Sprint(n), "--baud", fmt.Sprint(baud), "--link-dir", dir, "--name", "ext", "--quiet")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("simulated boards in a child process: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	bench := &boards.Bench{Path: "(bench, external sims)", DPS: boards.BenchDPS{Mode: "mock"}}
	deadline := time.Now().Add(20 * time.Second)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("ext-%d", i)
		port := filepath.Join(dir, name)
		for {
			_, e1 := os.Stat(port)
			_, e2 := os.Stat(port + ".ctl")
			if e1 == nil && e2 == nil {
				break
			}
			select {
			case <-done:
				return nil, nil, fmt.Errorf("simulated boards in a child process: %s sim exited early", exe)
			case <-ctx.Done():
				stop()
				return nil, nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				stop()
				return nil, nil, fmt.Errorf("simulated boards in a child process: %s did not appear", port)
			}
		}
		bench.Boards = append(bench.Boards, boards.BenchBoard{Name: name, Profile: "sim", Port: port, Dialect: "default"})
	}
	return bench, stop, nil
}

func writeFigures(w io.Writer, fig benchFigures) {
	tw := tablewriter.NewTable(w, tablewriter.WithHeader([]string{"measurement", "value", "target"}))
	row := func(a, b, c string) { _ = tw.Append([]string{a, b, c}) }
	if fig.SessionPingRate > 0 {
		rounds := fmt.Sprintf("median of %d rounds", pingRounds)
		row("PING/s via harness session ("+rounds+")", fmt.Sprintf("%.0f", fig.SessionPingRate), "")
		row("PING/s via bare go.bug.st/serial loop ("+rounds+")", fmt.Sprintf("%.0f", fig.BarePingRate), "")
		row("session / bare (median of the rounds' ratios)", fmt.Sprintf("%.2fx", fig.SessionBareRatio), ">= 0.8x")
		if fig.PyserialPingRate > 0 {
			row("PING/s via pyserial write+readline ("+rounds+")", fmt.Sprintf("%.0f", fig.PyserialPingRate), "")
			row("session / pyserial (median of the rounds' ratios)", fmt.Sprintf("%.2fx", fig.SessionPyserialRatio), ">= 4x")
		} else {
			row("pyserial", fig.Pyserial, "")
		}
	}
	if fig.SuiteWallS > 0 {
		row(fmt.Sprintf("suite wall time, 1 board at %d baud (%d cases)", fig.Baud, fig.SuiteCases), fmt.Sprintf("%.2fs", fig.SuiteWallS), "")
		row("bytes on the wire (to board / from board)", fmt.Sprintf("%d / %d", fig.WireToBoard, fig.WireFromBoard), "")
		row("bytes-on-wire lower bound", fmt.Sprintf("%.2fs", fig.WireLowerBoundS), "")
		if fig.WireLowerBoundS > 0 {
			row("wall / lower bound", fmt.Sprintf("%.2fx", fig.SuiteWallS/fig.WireLowerBoundS), "<= 1.05x")
			row("board→host bytes alone", fmt.Sprintf("%.2fs", fig.FromBoardBoundS), "")
			row("wall / board→host bound", fmt.Sprintf("%.2fx", fig.SuiteWallS/fig.FromBoardBoundS), "")
		}
	}
	if fig.OneWallS > 0 {
		row("suite wall time, 1 board", fmt.Sprintf("%.2fs (setup %.2fs)", fig.OneWallS, fig.OneSetupS), "")
		row(fmt.Sprintf("suite wall time, %d boards", fig.ScaleBoards), fmt.Sprintf("%.2fs (setup %.2fs; %s)", fig.ManyWallS, fig.ManySetupS, fig.ManyResults), "")
		row(fmt.Sprintf("%d boards / 1 board", fig.ScaleBoards), fmt.Sprintf("%.2fx", fig.ManyWallS/fig.OneWallS), "<= 1.5x")
		row("peak RSS, 1 board (VmHWM, sims in process)", fmt.Sprintf("%.1f MB", float64(fig.OnePeakRSS)/(1<<20)), "")
		row(fmt.Sprintf("peak RSS, %d boards (VmHWM, sims in process)", fig.ScaleBoards), fmt.Sprintf("%.1f MB", float64(fig.ManyPeakRSS)/(1<<20)), "<= 30 MB")
	}
	if fig.ExternalWallS > 0 {
		row(fmt.Sprintf("suite wall time, %d boards (sims in a child process)", fig.ScaleBoards), fmt.Sprintf("%.2fs (%s)", fig.ExternalWallS, fig.ExternalResults), "")
		row(fmt.Sprintf("%d boards (child sims) / 1 board", fig.ScaleBoards), fmt.Sprintf("%.2fx", fig.ExternalWallS/fig.OneWallS), "<= 1.5x")
		row(fmt.Sprintf("peak RSS, %d boards (VmHWM, harness + mock DPS only)", fig.ScaleBoards), fmt.Sprintf("%.1f MB", float64(fig.ExternalPeakRSS)/(1<<20)), "<= 30 MB")
	} else if fig.ExternalNote != "" {
		row("sims in a child process", fig.ExternalNote, "")
	}
	_ = tw.Render()
}
