package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
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
	pings     int
	payload   string
	boards    int
	baud      int
	script    string
	python    string
	only      string
	skip      []string
	jsonOut   string
	casesPath string
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure harness throughput and scaling",
		Long: `bench measures, side by side in one run, on simulated boards:

  ping     PING round trips per second through a harness session, through a
           bare go.bug.st/serial write/read loop, and through the usual pyserial
           write+readline script (bench/pyserial_ping.py, when python3 has pyserial)
  wire     the full suite's wall time on one board paced at --baud against the
           bytes-on-wire lower bound (bytes both ways / (baud/10) bytes per second)
  scale    the full suite on 1 board and on --boards boards (paced at --baud):
           wall time ratio and the process's peak RSS (VmHWM; the simulated
           boards run in this process and are included)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.pings, "pings", 2000, "PING round trips per measurement")
	fl.StringVar(&f.payload, "payload", "hello board", "PING payload")
	fl.IntVar(&f.boards, "boards", 32, "boards of the scaling measurement")
	fl.IntVar(&f.baud, "baud", 115200, "simulated baud rate of the wire and scale measurements")
	fl.StringVar(&f.script, "pyserial-script", DefaultPyserialScript, "pyserial comparison script")
	fl.StringVar(&f.python, "python", "", "python interpreter (default: the first of python3, /usr/bin/python3 that imports serial)")
	fl.StringVar(&f.only, "only", "", "suite cases of the wire and scale measurements (default: all)")
	fl.StringSliceVar(&f.skip, "skip", nil, "measurements to skip: ping, wire, scale")
	fl.StringVar(&f.jsonOut, "json", "", "also write the figures as JSON to this file")
	return cmd
}

// benchFigures are the results.
type benchFigures struct {
	PingPayload      string  `json:"ping_payload"`
	SessionPingRate  float64 `json:"session_ping_per_s,omitempty"`
	BarePingRate     float64 `json:"bare_ping_per_s,omitempty"`
	PyserialPingRate float64 `json:"pyserial_ping_per_s,omitempty"`
	Pyserial         string  `json:"pyserial,omitempty"` // interpreter used, or why unavailable

	Baud            int     `json:"baud,omitempty"`
	SuiteCases      int     `json:"suite_cases,omitempty"`
	SuiteWallS      float64 `json:"suite_wall_s,omitempty"`
	WireToBoard     int64   `json:"wire_bytes_to_board,omitempty"`
	WireFromBoard   int64   `json:"wire_bytes_from_board,omitempty"`
	WireLowerBoundS float64 `json:"wire_lower_bound_s,omitempty"`

	ScaleBoards int     `json:"scale_boards,omitempty"`
	OneWallS    float64 `json:"one_board_wall_s,omitempty"`
	ManyWallS   float64 `json:"many_boards_wall_s,omitempty"`
	OneSetupS   float64 `json:"one_board_setup_s,omitempty"`
	ManySetupS  float64 `json:"many_boards_setup_s,omitempty"`
	OnePeakRSS  int64   `json:"one_board_peak_rss,omitempty"`
	ManyPeakRSS int64   `json:"many_boards_peak_rss,omitempty"`
	ManyResults string  `json:"many_boards_results,omitempty"`
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
	ctx, cancel := signalContext(cmd)
	defer cancel()
	out := cmd.OutOrStdout()
	errw := cmd.ErrOrStderr()
	dir, err := os.MkdirTemp("", "hiltest-bench-")
	if err != nil {
		return failErr(err)
	}
	defer os.RemoveAll(dir)
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
	writeFigures(out, fig)
	if f.jsonOut != "" {
		data, _ := json.MarshalIndent(fig, "", "  ")
		if err := os.WriteFile(f.jsonOut, append(data, '\n'), 0o644); err != nil {
			return failErr(err)
		}
	}
	return nil
}

// benchPing measures PING rates on one unpaced simulated board.
func benchPing(ctx context.Context, f benchFlags, dir string, fig *benchFigures) error {
	b, err := sim.Start(ctx, sim.Config{Name: "bench-ping", LinkDir: dir})
	if err != nil {
		return fmt.Errorf("bench: start simulated board: %w", err)
	}
	defer b.Close()
	payload := []byte(f.payload)
	prof, _ := boards.LookupProfile("sim")
	s, err := harness.Open(ctx, harness.SessionConfig{Name: "bench-ping", Port: b.Link(), Profile: prof})
	if err != nil {
		return fmt.Errorf("bench: open session: %w", err)
	}
	warm := min(200, f.pings)
	if _, err := harness.PingBoard(ctx, s, warm, payload); err != nil {
		s.Close()
		return fmt.Errorf("bench: session ping: %w", err)
	}
	r, err := harness.PingBoard(ctx, s, f.pings, payload)
	s.Close()
	if err != nil {
		return fmt.Errorf("bench: session ping: %w", err)
	}
	fig.SessionPingRate = r.Rate()

	if _, err := harness.PingPort(ctx, b.Link(), warm, payload); err != nil {
		return fmt.Errorf("bench: bare ping: %w", err)
	}
	r, err = harness.PingPort(ctx, b.Link(), f.pings, payload)
	if err != nil {
		return fmt.Errorf("bench: bare ping: %w", err)
	}
	fig.BarePingRate = r.Rate()

	py := f.python
	if py == "" {
		py = findPyserial()
	}
	if py == "" {
		fig.Pyserial = "unavailable: no python3 with pyserial (apt-get install python3-serial)"
		return nil
	}
	if _, err := os.Stat(f.script); err != nil {
		fig.Pyserial = fmt.Sprintf("unavailable: script %s: %v (run from the repository root or pass --pyserial-script)", f.script, err)
		return nil
	}
	rate, err := pyserialPing(ctx, py, f.script, b.Link(), f.pings, f.payload)
	if err != nil {
		fig.Pyserial = fmt.Sprintf("failed: %v", err)
		return nil
	}
	fig.Pyserial = py
	fig.PyserialPingRate = rate
	return nil
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

// runSuite brings up a simulated bench of n boards, runs the cases and
// returns the report, the bring-up time and the run time. hook adjusts
// session configurations; beforeRun (optional) is called between bring-up
// and run.
func runSuite(ctx context.Context, n, baud int, cs []harness.Case, dir string, hook func(*harness.SessionConfig), beforeRun func()) (*harness.Report, time.Duration, time.Duration, error) {
	start := time.Now()
	bs, err := harness.OpenBench(ctx, simBench(n), harness.BenchOptions{
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
	rep, err := harness.Run(ctx, bs, harness.RunOptions{Cases: cs})
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
		p, err := harness.StartWireProxy(cfg.Port, dir, cfg.Name+"-wire")
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
	rep, _, wall, err := runSuite(ctx, 1, f.baud, cs, dir, hook, func() {
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
	}
	if rep.Summary.Fail+rep.Summary.Error > 0 {
		fmt.Fprintf(os.Stderr, "bench: note: %d case(s) failed or errored on the healthy board\n", rep.Summary.Fail+rep.Summary.Error)
	}
	return nil
}

// benchScale runs the suite on 1 and on many boards.
func benchScale(ctx context.Context, f benchFlags, cs []harness.Case, dir string, fig *benchFigures) error {
	fig.ScaleBoards = f.boards
	measure := func(n int) (*harness.Report, time.Duration, time.Duration, int64, error) {
		_ = harness.ResetPeakRSS()
		rep, setup, wall, err := runSuite(ctx, n, f.baud, cs, dir, nil, nil)
		if err != nil {
			return nil, 0, 0, 0, err
		}
		rss, err := harness.PeakRSS()
		if err != nil {
			return nil, 0, 0, 0, err
		}
		return rep, setup, wall, rss, nil
	}
	_, setup1, wall1, rss1, err := measure(1)
	if err != nil {
		return err
	}
	repN, setupN, wallN, rssN, err := measure(f.boards)
	if err != nil {
		return err
	}
	fig.OneWallS, fig.OneSetupS, fig.OnePeakRSS = wall1.Seconds(), setup1.Seconds(), rss1
	fig.ManyWallS, fig.ManySetupS, fig.ManyPeakRSS = wallN.Seconds(), setupN.Seconds(), rssN
	s := repN.Summary
	fig.ManyResults = fmt.Sprintf("%d pass, %d fail, %d error, %d skip", s.Pass, s.Fail, s.Error, s.Skip)
	return nil
}

func writeFigures(w io.Writer, fig benchFigures) {
	tw := tablewriter.NewTable(w, tablewriter.WithHeader([]string{"measurement", "value", "target"}))
	row := func(a, b, c string) { _ = tw.Append([]string{a, b, c}) }
	if fig.SessionPingRate > 0 {
		row("PING/s via harness session", fmt.Sprintf("%.0f", fig.SessionPingRate), "")
		row("PING/s via bare go.bug.st/serial loop", fmt.Sprintf("%.0f", fig.BarePingRate), "")
		row("session / bare", fmt.Sprintf("%.2fx", fig.SessionPingRate/fig.BarePingRate), ">= 0.8x")
		if fig.PyserialPingRate > 0 {
			row("PING/s via pyserial write+readline", fmt.Sprintf("%.0f", fig.PyserialPingRate), "")
			row("session / pyserial", fmt.Sprintf("%.2fx", fig.SessionPingRate/fig.PyserialPingRate), ">= 4x")
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
		}
	}
	if fig.OneWallS > 0 {
		row("suite wall time, 1 board", fmt.Sprintf("%.2fs (setup %.2fs)", fig.OneWallS, fig.OneSetupS), "")
		row(fmt.Sprintf("suite wall time, %d boards", fig.ScaleBoards), fmt.Sprintf("%.2fs (setup %.2fs; %s)", fig.ManyWallS, fig.ManySetupS, fig.ManyResults), "")
		row(fmt.Sprintf("%d boards / 1 board", fig.ScaleBoards), fmt.Sprintf("%.2fx", fig.ManyWallS/fig.OneWallS), "<= 1.5x")
		row("peak RSS, 1 board (VmHWM, sims in process)", fmt.Sprintf("%.1f MB", float64(fig.OnePeakRSS)/(1<<20)), "")
		row(fmt.Sprintf("peak RSS, %d boards (VmHWM, sims in process)", fig.ScaleBoards), fmt.Sprintf("%.1f MB", float64(fig.ManyPeakRSS)/(1<<20)), "<= 30 MB")
	}
	_ = tw.Render()
}
