package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Defaults of RunOptions.
const (
	// DefaultCaseTimeout bounds a case that does not set its own Timeout.
	DefaultCaseTimeout = 60 * time.Second
	// caseGrace is how long a case that overran its timeout gets to return
	// after its context is cancelled before the runner gives up on the board.
	caseGrace = 5 * time.Second
)

// Report and event file names in the output directory.
const (
	ReportFile = "report.json"
	JUnitFile  = "junit.xml"
	EventsFile = "events.jsonl"
)

// RunOptions configure Run.
type RunOptions struct {
	Cases []Case
	// Only keeps the cases whose ID matches: a path.Match glob ("sas/*")
	// when it has glob characters, else a substring. "" = all.
	Only string
	// DefaultTimeout for cases without their own (0 = DefaultCaseTimeout).
	DefaultTimeout time.Duration
	// OutDir receives events.jsonl as the run goes, then report.json and
	// junit.xml ("" = no files).
	OutDir string
	// Events receives the JSON Lines event stream too (nil = none).
	Events io.Writer
	// ShowSecrets disables redaction in reports.
	ShowSecrets bool
	// Progress reports finished cases (nil = silent).
	Progress *Progress
}

// Event is one line of the JSON Lines event stream.
type Event struct {
	Event  string       `json:"event"` // "run-start", "board", "case", "run-end"
	Time   time.Time    `json:"time"`
	Board  *BoardReport `json:"board,omitempty"`
	Case   *CaseResult  `json:"case,omitempty"`
	Report *Summary     `json:"summary,omitempty"`
	Cases  []string     `json:"cases,omitempty"`
	Boards []string     `json:"boards,omitempty"`
}

// eventLog writes events, one Write per line, so a killed run leaves every
// finished line intact.
type eventLog struct {
	mu  sync.Mutex
	ws  []io.Writer
	err error
}

func (l *eventLog) emit(e Event) {
	if len(l.ws) == 0 {
		// Nowhere to write (ws is set before the boards start): skip
		// encoding the event.
		return
	}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.ws {
		if _, err := w.Write(line); err != nil && l.err == nil {
			l.err = fmt.Errorf("write event: %w", err)
		}
	}
}

// MatchCase reports whether case id is selected by pattern (see
// RunOptions.Only): comma-separated alternatives, each a path.Match glob
// matched against the ID and its parent paths, or a substring.
func MatchCase(pattern, id string) bool {
	if pattern == "" {
		return true
	}
	for _, p := range strings.Split(pattern, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if strings.ContainsAny(p, "*?[") {
			// The glob matches the ID or one of its parents: "sas/*"
			// selects "sas/kat/default" through "sas/kat".
			parts := strings.Split(id, "/")
			for k := len(parts); k > 0; k-- {
				if ok, _ := path.Match(p, strings.Join(parts[:k], "/")); ok {
					return true
				}
			}
			continue
		}
		if strings.Contains(id, p) {
			return true
		}
	}
	return false
}

// Run runs the cases on every board of the bench in parallel (one worker
// per board, cases in order on each) and returns the report. It goes on
// after failures: a failed or errored case does not stop the board's
// suite, a lost board errors its remaining cases and the other boards go
// on. With OutDir set it writes events.jsonl as cases finish, then
// report.json and junit.xml.
func Run(ctx context.Context, bs *BenchSession, opts RunOptions) (*Report, error) {
	var cases []Case
	for _, c := range opts.Cases {
		if MatchCase(opts.Only, c.ID) {
			cases = append(cases, c)
		}
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("run: no case matches %q", opts.Only)
	}
	red := Redactor{Show: opts.ShowSecrets}
	ev := &eventLog{}
	if opts.Events != nil {
		ev.ws = append(ev.ws, opts.Events)
	}
	if opts.OutDir != "" {
		if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("run: output directory: %w", err)
		}
		f, err := os.Create(filepath.Join(opts.OutDir, EventsFile))
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		defer f.Close()
		ev.ws = append(ev.ws, f) // *os.File: each Write is a write(2), unbuffered
	}
	rep := &Report{Version: ReportVersion, Tool: "hiltest", Started: time.Now().UTC(), ShowSecrets: opts.ShowSecrets}
	if bs.Bench != nil {
		rep.Bench = bs.Bench.Path
	}
	rep.DPS = DPSReport{Mode: bs.Mode, Endpoint: bs.DPS.Endpoint(), IDScope: bs.DPS.IDScope, APIVersion: bs.DPS.APIVersion}
	var ids, names []string
	for _, c := range cases {
		ids = append(ids, c.ID)
	}
	for _, m := range bs.Boards {
		names = append(names, m.Decl.Name)
	}
	ev.emit(Event{Event: "run-start", Time: rep.Started, Cases: ids, Boards: names})

	rep.Boards = make([]BoardReport, len(bs.Boards))
	var wg sync.WaitGroup
	for i, m := range bs.Boards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Boards[i] = runBoard(ctx, m, cases, opts, red, ev)
		}()
	}
	wg.Wait()
	rep.Finished = time.Now().UTC()
	rep.DurationMS = rep.Finished.Sub(rep.Started).Milliseconds()
	rep.summarize()
	opts.Progress.Finish()
	s := rep.Summary
	ev.emit(Event{Event: "run-end", Time: rep.Finished, Report: &s})
	if opts.OutDir != "" {
		if err := rep.WriteFile(filepath.Join(opts.OutDir, ReportFile)); err != nil {
			return rep, err
		}
		if err := rep.WriteJUnitFile(filepath.Join(opts.OutDir, JUnitFile)); err != nil {
			return rep, err
		}
	}
	if ev.err != nil {
		return rep, ev.err
	}
	return rep, nil
}

// boardReport starts the report of a member: declaration, handshake,
// flashing and setup.
func boardReport(m *BenchMember, red Redactor) BoardReport {
	d := m.Decl
	br := BoardReport{Name: d.Name, startedTime: m.started, Setup: m.Setup, Flash: m.Flash,
		Declared: Declared{Profile: d.Profile, Port: d.Port, Firmware: d.Firmware, FirmwareVersion: d.FirmwareVersion,
			Revision: d.Revision, Dialect: d.Dialect, Labels: d.Labels}}
	if br.Declared.Port == "" {
		br.Declared.Port = m.Port
	}
	if d.Sim != nil {
		var parts []string
		if d.Sim.Bug != "" {
			parts = append(parts, "bug="+d.Sim.Bug)
		}
		if d.Sim.Faults != "" {
			parts = append(parts, "faults="+d.Sim.Faults)
		}
		if d.Sim.Agent != "" {
			parts = append(parts, "agent="+d.Sim.Agent)
		}
		parts = append(parts, fmt.Sprintf("seed=%d", d.Sim.Seed))
		br.Declared.Sim = strings.Join(parts, " ")
		if br.Declared.Profile == "" {
			br.Declared.Profile = "sim"
		}
	}
	if m.Board != nil {
		info := m.Info
		br.Info = &info
	}
	if m.SetupErr != nil {
		br.SetupError = red.Text(m.SetupErr.Error())
	}
	if br.Flash != nil {
		f := *br.Flash
		f.Output = red.Text(f.Output)
		br.Flash = &f
	}
	return br
}

// runBoard runs the cases in order on one board.
func runBoard(ctx context.Context, m *BenchMember, cases []Case, opts RunOptions, red Redactor, ev *eventLog) BoardReport {
	start := time.Now()
	br := boardReport(m, red)
	if br.startedTime.IsZero() {
		br.startedTime = start
	}
	var dead string // why the board cannot run more cases
	if m.SetupErr != nil {
		dead = "board setup failed: " + br.SetupError
		if m.Flash != nil && !m.Flash.OK() {
			dead = "flash failed: " + m.Flash.Error
		}
	} else if m.Board == nil {
		dead = "board not open"
	}
	if m.Board != nil {
		m.Board.TakeOutput() // setup output is not any case's
	}
	br.Cases = make([]CaseResult, 0, len(cases)) // no regrowth: the results live until the run ends
	for _, c := range cases {
		var res CaseResult
		switch {
		case ctx.Err() != nil:
			res = CaseResult{Board: m.Decl.Name, ID: c.ID, Title: c.Title, Optional: c.Optional, Status: StatusError,
				Message: "run cancelled", Started: time.Now().UTC()}
		case dead != "":
			res = CaseResult{Board: m.Decl.Name, ID: c.ID, Title: c.Title, Optional: c.Optional, Status: StatusError,
				Message: dead, Started: time.Now().UTC()}
		default:
			var lost, hung bool
			before := m.resets()
			res, lost, hung = runCase(ctx, m, c, opts, red)
			switch {
			case lost:
				dead = "board lost"
			case hung:
				dead = fmt.Sprintf("board busy: case %s did not stop after its timeout", c.ID)
			case m.resets() != before && m.reprepare != nil:
				// The board rebooted (a RESET case, a brownout, a
				// watchdog): its clock, trust anchor and DPS settings are
				// gone. Put them back so the next case starts clean.
				if err := m.reprepare(ctx); err != nil {
					res.Logs = append(res.Logs, red.Text("after the reboot: "+err.Error()))
					if errors.Is(err, ErrBoardLost) {
						dead = "board lost"
					}
				} else {
					res.Logs = append(res.Logs, "board rebooted: prepared it again")
				}
				m.Board.TakeOutput()
			}
		}
		br.Cases = append(br.Cases, res)
		ev.emit(Event{Event: "case", Time: time.Now().UTC(), Case: &res})
		opts.Progress.CaseDone(res)
	}
	if s := m.session; s != nil {
		br.Stats = statsMap(s.Stats())
	}
	if m.sim != nil {
		for _, f := range m.sim.FaultLog() {
			br.Faults = append(br.Faults, red.Text(f.Fault+": "+f.Detail))
		}
	}
	br.DurationMS = time.Since(start).Milliseconds()
	b := br
	b.Cases = nil
	ev.emit(Event{Event: "board", Time: time.Now().UTC(), Board: &b})
	return br
}

// runCase runs one case on one board. lost reports that the board is gone;
// hung that the case did not return after its timeout (the board may still
// be in use by it).
func runCase(ctx context.Context, m *BenchMember, c Case, opts RunOptions, red Redactor) (res CaseResult, lost, hung bool) {
	res = CaseResult{Board: m.Decl.Name, ID: c.ID, Title: c.Title, Optional: c.Optional, Started: time.Now().UTC()}
	info := m.Board.Info()
	for _, cap := range c.Requires {
		if !info.HasCap(cap) {
			res.Status = StatusSkip
			res.Message = fmt.Sprintf("board lacks capability %q", cap)
			return res, false, false
		}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = opts.DefaultTimeout
	}
	if timeout <= 0 {
		timeout = DefaultCaseTimeout
	}
	t := NewT(m.Board, m.Env)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Error(fmt.Errorf("case panicked: %v\n%s", r, debug.Stack()))
			}
		}()
		c.Run(cctx, t)
	}()
	timedOut := false
	select {
	case <-done:
	case <-cctx.Done():
		timedOut = ctx.Err() == nil
		select {
		case <-done:
		case <-time.After(caseGrace):
			hung = true
		}
	}
	res.DurationMS = time.Since(start).Milliseconds()
	res.Status = t.Status()
	for _, f := range t.Failures() {
		res.Failures = append(res.Failures, red.failureReport(f))
	}
	// t.Outputs and t.Logs return copies: redact them in place rather
	// than copy them again.
	res.Outputs = red.redactOutputsInPlace(t.Outputs())
	res.Logs = red.linesInPlace(t.Logs())
	if out := m.Board.TakeOutput(); len(out) > 0 {
		res.DeviceOutput = make([]string, len(out))
		for i, l := range out {
			res.DeviceOutput[i] = red.Text(l.Text)
		}
	}
	switch {
	case t.hasError(ErrBoardLost):
		res.Status = StatusError
		res.Message = "board lost: " + firstErr(t, ErrBoardLost)
		lost = true
	case t.hasError(ErrBoardReset):
		res.Status = StatusError
		res.Message = "board reset during " + c.ID
	case timedOut:
		res.Status = StatusError
		res.Message = fmt.Sprintf("case exceeded its timeout of %s", timeout)
		res.Failures = append(res.Failures, FailureReport{Message: res.Message})
	case ctx.Err() != nil && res.Status == StatusError:
		res.Message = "run cancelled"
	case res.Status == StatusSkip:
		res.Message = t.SkipReason()
	case len(res.Failures) > 0 && res.Status != StatusPass:
		res.Message = res.Failures[0].Message
		if d := res.Failures[0].Diagnosis; d != "" && !strings.Contains(res.Message, d) {
			res.Message += ": " + d
		}
	}
	if hung {
		res.Status = StatusError
	}
	return res, lost, hung
}

// statsMap turns a counters struct into name → value, for reports.
func statsMap(v any) map[string]int {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]int{}
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		switch fv := rv.Field(i); fv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out[snake(f.Name)] = int(fv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out[snake(f.Name)] = int(fv.Uint())
		}
	}
	return out
}

// snake converts a Go field name to snake_case ("BadCRC" → "bad_crc").
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		upper := r >= 'A' && r <= 'Z'
		if upper && i > 0 {
			prevLower := rs[i-1] >= 'a' && rs[i-1] <= 'z'
			nextLower := i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z'
			if prevLower || (nextLower && rs[i-1] >= 'A' && rs[i-1] <= 'Z') {
				b.WriteByte('_')
			}
		}
		if upper {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// firstErr returns the message of the first recorded error that is target.
func firstErr(t *T, target error) string {
	for _, err := range t.Errors() {
		if errors.Is(err, target) {
			return err.Error()
		}
	}
	return ""
}
