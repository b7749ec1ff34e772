package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"

	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// ReportVersion is the version of the JSON report format.
const ReportVersion = 1

// Report is the result of a run: what ran where, on which firmware, and
// what happened. It is written as report.json and read back by Diff.
type Report struct {
	Version     int           `json:"version"`
	Tool        string        `json:"tool"`
	Bench       string        `json:"bench,omitempty"`
	Started     time.Time     `json:"started"`
	Finished    time.Time     `json:"finished"`
	DurationMS  int64         `json:"duration_ms"`
	DPS         DPSReport     `json:"dps"`
	ShowSecrets bool          `json:"show_secrets,omitempty"`
	Boards      []BoardReport `json:"boards"`
	Summary     Summary       `json:"summary"`
}

// DPSReport says which DPS a run talked to.
type DPSReport struct {
	Mode       string `json:"mode"` // "mock" or "live"
	Endpoint   string `json:"endpoint"`
	IDScope    string `json:"id_scope"`
	APIVersion string `json:"api_version,omitempty"`
}

// Declared is a board's entry in the bench file, as reported.
type Declared struct {
	Profile         string   `json:"profile,omitempty"`
	Port            string   `json:"port,omitempty"`
	Firmware        string   `json:"firmware,omitempty"`
	FirmwareVersion string   `json:"firmware_version,omitempty"`
	Revision        string   `json:"revision,omitempty"`
	Dialect         string   `json:"dialect,omitempty"`
	Labels          []string `json:"labels,omitempty"`
	Sim             string   `json:"sim,omitempty"` // "bug=...,faults=...,seed=..." for simulated boards
}

// BoardReport is one board's suite.
type BoardReport struct {
	Name        string         `json:"name"`
	Declared    Declared       `json:"declared"`
	Info        *BoardInfo     `json:"info,omitempty"` // from HELLO; nil when the board never answered
	Flash       *FlashResult   `json:"flash,omitempty"`
	SetupError  string         `json:"setup_error,omitempty"`
	Setup       []string       `json:"setup,omitempty"` // preparation steps done (TIME.SET, TLS.CA, ...)
	Stats       map[string]int `json:"stats,omitempty"` // session counters (retries, bad CRCs, resets, ...)
	Faults      []string       `json:"faults,omitempty"`
	DurationMS  int64          `json:"duration_ms"`
	Cases       []CaseResult   `json:"cases"`
	Summary     Summary        `json:"summary"`
	startedTime time.Time
}

// CaseResult is one case on one board.
type CaseResult struct {
	Board        string            `json:"board"`
	ID           string            `json:"id"`
	Title        string            `json:"title,omitempty"`
	Optional     bool              `json:"optional,omitempty"`
	Status       Status            `json:"status"`
	Message      string            `json:"message,omitempty"` // one line: the first failure, the error, or the skip reason
	Started      time.Time         `json:"started"`
	DurationMS   int64             `json:"duration_ms"`
	Failures     []FailureReport   `json:"failures,omitempty"`
	Outputs      map[string]string `json:"outputs,omitempty"`
	Logs         []string          `json:"logs,omitempty"`
	DeviceOutput []string          `json:"device_output,omitempty"`
}

// FailureReport is a Failure as written in reports.
type FailureReport struct {
	Message    string            `json:"message"`
	Diagnosis  string            `json:"diagnosis,omitempty"`
	Divergence *DivergenceReport `json:"divergence,omitempty"`
}

// DivergenceReport is where compared bytes first differ.
type DivergenceReport struct {
	Offset int `json:"offset"`
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// ExpectedByte and GotByte are the bytes at Offset: -1 when that side
	// ended there, -2 when redacted (secret bytes, see Redacted).
	ExpectedByte int    `json:"expected_byte"`
	GotByte      int    `json:"got_byte"`
	View         string `json:"view"`
	Redacted     bool   `json:"redacted,omitempty"`
}

// Summary counts results.
type Summary struct {
	Total  int `json:"total"`
	Pass   int `json:"pass"`
	Fail   int `json:"fail"`
	Skip   int `json:"skip"`
	Error  int `json:"error"`
	Failed int `json:"failed_required"` // required (non-optional) cases that failed or errored
}

func (s *Summary) add(c CaseResult) {
	s.Total++
	switch c.Status {
	case StatusPass:
		s.Pass++
	case StatusFail:
		s.Fail++
	case StatusSkip:
		s.Skip++
	case StatusError:
		s.Error++
	}
	if !c.Optional && (c.Status == StatusFail || c.Status == StatusError) {
		s.Failed++
	}
}

// OneLine is a one-line explanation of a failed case, e.g.
// "board sim-3: sas/default: SAS signature differs at byte 87: signed with
// the group key instead of the derived device key".
func (c CaseResult) OneLine() string {
	msg := c.Message
	diag := ""
	for _, f := range c.Failures {
		if f.Diagnosis != "" {
			diag = f.Diagnosis
			if msg == "" {
				msg = f.Message
			}
			break
		}
	}
	s := fmt.Sprintf("board %s: %s: %s", c.Board, c.ID, msg)
	if diag != "" && !strings.Contains(msg, diag) {
		s += ": " + diag
	}
	return s
}

// Diagnoses returns the diagnoses of the case's failures.
func (c CaseResult) Diagnoses() []string {
	var out []string
	for _, f := range c.Failures {
		if f.Diagnosis != "" {
			out = append(out, f.Diagnosis)
		}
	}
	return out
}

// Case returns the result of case id on board, or nil.
func (r *Report) Case(board, id string) *CaseResult {
	for i := range r.Boards {
		if r.Boards[i].Name != board {
			continue
		}
		for j := range r.Boards[i].Cases {
			if r.Boards[i].Cases[j].ID == id {
				return &r.Boards[i].Cases[j]
			}
		}
	}
	return nil
}

// Board returns the report of the named board, or nil.
func (r *Report) Board(name string) *BoardReport {
	for i := range r.Boards {
		if r.Boards[i].Name == name {
			return &r.Boards[i]
		}
	}
	return nil
}

// Results returns every case result, board by board.
func (r *Report) Results() []CaseResult {
	var out []CaseResult
	for _, b := range r.Boards {
		out = append(out, b.Cases...)
	}
	return out
}

func (r *Report) summarize() {
	r.Summary = Summary{}
	for i := range r.Boards {
		b := &r.Boards[i]
		b.Summary = Summary{}
		for _, c := range b.Cases {
			b.Summary.add(c)
			r.Summary.add(c)
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteFile writes the report to path, atomically (temp file + rename).
func (r *Report) WriteFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".report-*.json")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// ReadReport reads a JSON report written by WriteFile.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read report %s: not a hiltest report: %w", path, err)
	}
	if r.Version == 0 || r.Boards == nil {
		return nil, fmt.Errorf("read report %s: not a hiltest report (no version or boards)", path)
	}
	if r.Version > ReportVersion {
		return nil, fmt.Errorf("read report %s: format version %d is newer than this hiltest (%d)", path, r.Version, ReportVersion)
	}
	return &r, nil
}

// TableOptions shape the summary WriteSummary prints.
type TableOptions struct {
	// ByBoard prints one row per board (counts, time, first failure)
	// instead of one row per board and case.
	ByBoard bool
	// MaxFailures bounds the failure lines printed per board (0 = all).
	MaxFailures int
}

// WriteTable prints the summary: one row per board and case with status
// and time, then one line per failure with the first divergent byte and
// the diagnosis.
func (r *Report) WriteTable(w io.Writer) error { return r.WriteSummary(w, TableOptions{}) }

// WriteSummary prints the summary table, the totals and the failures.
func (r *Report) WriteSummary(w io.Writer, opts TableOptions) error {
	var tw *tablewriter.Table
	if opts.ByBoard {
		tw = tablewriter.NewTable(w, tablewriter.WithHeader([]string{"board", "firmware", "dialect", "pass", "fail", "error", "skip", "time", "first failure"}))
	} else {
		tw = tablewriter.NewTable(w, tablewriter.WithHeader([]string{"board", "case", "status", "time", "detail"}))
	}
	for _, b := range r.Boards {
		var rows [][]string
		if opts.ByBoard {
			fw, dialect := b.Declared.Firmware, b.Declared.Dialect
			if b.Info != nil {
				fw, dialect = b.Info.Firmware+" "+b.Info.FirmwareVersion, b.Info.Dialect
			}
			first := b.SetupError
			for _, c := range b.Cases {
				if first == "" && (c.Status == StatusFail || c.Status == StatusError) {
					first = c.ID + ": " + c.Message
				}
			}
			s := b.Summary
			rows = append(rows, []string{b.Name, fw, dialect, fmt.Sprint(s.Pass), fmt.Sprint(s.Fail), fmt.Sprint(s.Error), fmt.Sprint(s.Skip),
				fmtDuration(b.DurationMS), clip(first, 60)})
		} else {
			if b.SetupError != "" && len(b.Cases) == 0 {
				rows = append(rows, []string{b.Name, "(setup)", string(StatusError), "", clip(b.SetupError, 60)})
			}
			for _, c := range b.Cases {
				status := string(c.Status)
				if c.Optional && (c.Status == StatusFail || c.Status == StatusError) {
					status += " (optional)"
				}
				detail := ""
				if c.Status != StatusPass {
					detail = clip(c.Message, 60)
				}
				rows = append(rows, []string{b.Name, c.ID, status, fmtDuration(c.DurationMS), detail})
			}
		}
		for _, row := range rows {
			if err := tw.Append(row); err != nil {
				return fmt.Errorf("summary table: %w", err)
			}
		}
	}
	if err := tw.Render(); err != nil {
		return fmt.Errorf("summary table: %w", err)
	}
	s := r.Summary
	fmt.Fprintf(w, "%d cases on %d boards: %d pass, %d fail, %d skip, %d error (%.1fs)\n",
		s.Total, len(r.Boards), s.Pass, s.Fail, s.Skip, s.Error, float64(r.DurationMS)/1000)
	var lines []string
	for _, b := range r.Boards {
		if b.SetupError != "" {
			lines = append(lines, fmt.Sprintf("board %s: setup: %s", b.Name, b.SetupError))
		}
		n := 0
		for _, c := range b.Cases {
			if c.Status != StatusFail && c.Status != StatusError {
				continue
			}
			n++
			if opts.MaxFailures == 0 || n <= opts.MaxFailures {
				lines = append(lines, c.OneLine())
			}
		}
		if opts.MaxFailures > 0 && n > opts.MaxFailures {
			lines = append(lines, fmt.Sprintf("board %s: … and %d more (see the reports)", b.Name, n-opts.MaxFailures))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nFailures:")
		for _, l := range lines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return nil
}

func fmtDuration(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%dms", ms)
	}
	return fmt.Sprintf("%.2fs", float64(ms)/1000)
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Redactor hides secrets in text for reports. The zero value redacts; a
// Redactor with Show set passes text through.
type Redactor struct {
	Show bool
}

var (
	// key=value pairs, as in frames (protocol args) and in SAS tokens.
	kvRe = regexp.MustCompile(`([a-z_][a-z0-9_.]*)=([^\s&"',;]+)`)
	// base64 runs of 44 characters or more: 32-byte keys and signatures (44)
	// and 64-byte group keys (88).
	b64Re = regexp.MustCompile(`[A-Za-z0-9+/]{43,}={0,2}`)
)

// Text redacts secrets in free text: values of secret keys (protocol.IsSecret,
// sig= in tokens) and base64 strings of 44 characters or more.
func (r Redactor) Text(s string) string {
	if r.Show || s == "" {
		return s
	}
	// The regexps copy the whole text even when nothing is replaced; most
	// text has no secret, so look for a candidate first and hand back s
	// itself (not a copy) when nothing changed.
	out := s
	if strings.IndexByte(out, '=') >= 0 {
		out = kvRe.ReplaceAllStringFunc(out, redactKV)
	}
	if hasB64Run(out, 43) {
		out = b64Re.ReplaceAllStringFunc(out, reference.Redact)
	}
	if out == s {
		return s
	}
	return out
}

// redactKV redacts the value of one key=value match when the key is secret.
func redactKV(m string) string {
	i := strings.IndexByte(m, '=')
	key, val := m[:i], m[i+1:]
	if strings.HasSuffix(key, ".blob") {
		return m
	}
	if protocol.IsSecret(key) || key == "sig" || key == "group_key" || key == "device_key" || key == "primary_key" || key == "secondary_key" {
		return key + "=" + reference.Redact(val)
	}
	return m
}

// hasB64Run reports whether s holds n or more base64 alphabet characters
// ([A-Za-z0-9+/]) in a row: a cheap filter for b64Re.
func hasB64Run(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			run++
			if run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// Output redacts the value of output key: a token's signature, a request's
// token signature, a key or signature whole, and secret-looking parts of
// anything else.
func (r Redactor) Output(key, value string) string {
	if r.Show {
		return value
	}
	k := strings.ToLower(key)
	switch {
	case k == "token" || strings.HasSuffix(k, "_token"):
		// Keep sr, se and skn: only the signature is secret.
		return r.Text(reference.RedactToken(value))
	case k == "request" || strings.HasSuffix(k, "_request"):
		// HTTP request bytes: the Authorization token's sig is redacted,
		// the rest stays comparable across runs.
		return r.Text(value)
	case SecretOutput(key):
		return reference.Redact(value)
	}
	return r.Text(value)
}

// SecretOutput reports whether outputs named key hold secrets: protocol
// secret argument names, and names ending in _key, key, sig, signature,
// token or password.
func SecretOutput(key string) bool {
	k := strings.ToLower(key)
	if protocol.IsSecret(k) {
		return true
	}
	for _, suf := range []string{"key", "sig", "signature", "password", "secret"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// failureReport converts a Failure for reports, redacting secret views.
func (r Redactor) failureReport(f Failure) FailureReport {
	fr := FailureReport{Message: r.Text(f.Message), Diagnosis: r.Text(f.Diagnosis)}
	if d := f.Divergence; d != nil {
		dr := &DivergenceReport{Offset: d.Offset, Line: d.Line, Column: d.Column, ExpectedByte: d.ExpectedByte, GotByte: d.GotByte}
		if f.Secret && !r.Show {
			dr.Redacted = true
			dr.View = fmt.Sprintf("differs at byte %d (secret bytes: the view is redacted; run with --show-secrets to see it)", d.Offset)
			dr.ExpectedByte, dr.GotByte = -2, -2
			fr.Message = redactByteDetail(fr.Message, d)
		} else {
			dr.View = r.Text(d.View())
		}
		fr.Divergence = dr
	}
	return fr
}

// redactByteDetail removes the "expected 'x' (0x78), got 'y' (0x79)" part
// of a secret comparison's message.
func redactByteDetail(msg string, d *reference.Divergence) string {
	if s := d.String(); strings.Contains(msg, s) {
		return strings.Replace(msg, s, fmt.Sprintf("differs at byte %d", d.Offset), 1)
	}
	return msg
}

// redactOutputsInPlace applies Output to each value of m, which it
// modifies; an empty m gives nil.
func (r Redactor) redactOutputsInPlace(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	for k, v := range m {
		m[k] = r.Output(k, v)
	}
	return m
}

// linesInPlace applies Text to each line of ls, which it modifies; an
// empty ls gives nil.
func (r Redactor) linesInPlace(ls []string) []string {
	if len(ls) == 0 {
		return nil
	}
	for i, l := range ls {
		ls[i] = r.Text(l)
	}
	return ls
}
