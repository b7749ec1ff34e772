package cases

// This file binds the package to the harness's case API. Until
// harness/case.go builds, it holds local copies of its types with the same
// names and fields; the rest of the package uses only these names, so the
// switch to the harness's types is a change to this file alone.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// Board is a board under test as a case sees it (harness.Board).
type Board interface {
	Name() string
	Info() BoardInfo
	Call(ctx context.Context, verb string, args ...protocol.Arg) (*protocol.Frame, error)
	Reset(ctx context.Context) error
	TakeOutput() []LogLine
}

// BoardInfo is the handshake result (harness.BoardInfo).
type BoardInfo struct {
	Proto           int
	Firmware        string
	FirmwareVersion string
	Board           string
	Chip            string
	MAC             string
	MaxFrame        int
	BlobMax         int
	Dialect         string
	Caps            []string
}

// HasCap reports whether the board listed capability c.
func (i BoardInfo) HasCap(c string) bool {
	for _, x := range i.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// LogLine is one line of device output (harness.LogLine).
type LogLine struct {
	Time time.Time
	Text string
}

// BenchBoard is the board's bench entry.
type BenchBoard = boards.BenchBoard

// Case is one test case. Run is called once per board; it reports through t.
type Case struct {
	ID       string        // stable identifier, e.g. "sas/default/primary-key"
	Title    string        // one line for humans
	Requires []string      // board capabilities (protocol.Cap*) the case needs; a board lacking one skips it
	Optional bool          // not required by the release gate
	Timeout  time.Duration // 0 = the runner's default
	Run      func(ctx context.Context, t *T)
}

// Env is what cases know about the bench: the DPS they talk to and the
// board's declaration in the bench file.
type Env struct {
	DPS         DPSTarget
	Declared    BenchBoard // the board's bench entry (declared dialect, firmware, ...)
	Now         func() time.Time
	ShowSecrets bool
}

// DPSTarget is the DPS a bench uses.
type DPSTarget struct {
	Host        string // host name the board connects to
	Port        int
	CAPEM       []byte // trust anchor for the board (TLS.CA)
	IDScope     string
	APIVersion  string
	Mock        *mockdps.Server      // nil for a live DPS
	Enrollments *mockdps.Enrollments // the enrollments cases may use (keys included)
}

// Endpoint is Host, plus ":Port" when the port is not 443: the value of
// the Host header of DPS requests (protocol/PROTOCOL.md, DPS.REQUEST).
func (d DPSTarget) Endpoint() string {
	if d.Port == 0 || d.Port == 443 {
		return d.Host
	}
	return fmt.Sprintf("%s:%d", d.Host, d.Port)
}

// Status is a case result.
type Status string

// Case results.
const (
	StatusPass  Status = "pass"
	StatusFail  Status = "fail"
	StatusSkip  Status = "skip"
	StatusError Status = "error" // the case could not run to a verdict (board lost, reset, timeout)
)

// Failure explains why a case failed.
type Failure struct {
	Message    string                // one line, e.g. "SAS token differs at byte 87"
	Diagnosis  string                // the named cause, e.g. "signed with the group key instead of the derived device key"
	Divergence *reference.Divergence // first divergent byte, when bytes were compared
	Secret     bool                  // the compared bytes hold secrets: reports redact the view unless asked not to
}

// T is a case's handle on one run on one board. Its methods are safe for
// concurrent use (a case may fan out, and the runner reads the result of a
// case that overran its timeout while it may still be running).
type T struct {
	Board Board
	Env   *Env

	mu       sync.Mutex
	status   Status
	failures []Failure
	errs     []error
	skip     string
	outputs  map[string]string
	logs     []string
}

// NewT returns a T for running one case on board b. The runner uses it;
// custom cases in tests may too.
func NewT(b Board, env *Env) *T {
	if env == nil {
		env = &Env{}
	}
	return &T{Board: b, Env: env, status: StatusPass, outputs: map[string]string{}}
}

// Fail records a failure; the case goes on. A failure does not override an
// error: a case that could not reach a verdict stays in error.
func (t *T) Fail(f Failure) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status != StatusError {
		t.status = StatusFail
	}
	t.failures = append(t.failures, f)
}

// Failf records a failure with a formatted message.
func (t *T) Failf(format string, args ...any) { t.Fail(Failure{Message: fmt.Sprintf(format, args...)}) }

// Error records that the case could not reach a verdict, e.g. a board
// call that returned ErrTimeout, ErrBoardReset or ErrBoardLost. The runner
// looks at the error chain (errors.Is) to tell a reset or a lost board
// from other errors.
func (t *T) Error(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.status = StatusError
	t.errs = append(t.errs, err)
	t.failures = append(t.failures, Failure{Message: err.Error()})
}

// Skip marks the case skipped; call it before failing anything.
func (t *T) Skip(reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.status == StatusPass {
		t.status = StatusSkip
		t.skip = reason
	}
}

// Output records a named output of the case (e.g. the board's token) for the
// report and for regression diffs. Values of secret keys (see SecretOutput)
// and secret-looking substrings are redacted in reports.
func (t *T) Output(key, value string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.outputs[key] = value
}

// Logf records a note in the case's log.
func (t *T) Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.logs = append(t.logs, s)
}

// Compare compares the expected bytes with what the board produced. When
// they differ it records a failure "WHAT differs at byte N: ..." carrying
// the divergence and returns it; it returns nil when they are equal. Mark
// secret comparisons (keys, signatures, tokens) so reports redact the view.
func (t *T) Compare(what string, expected, got []byte, secret bool) *reference.Divergence {
	d := reference.FirstDivergence(expected, got)
	if d == nil {
		return nil
	}
	t.Fail(Failure{Message: what + " " + d.String(), Divergence: d, Secret: secret})
	return d
}

// Diagnose sets the diagnosis of the last failure recorded without one
// (e.g. after Compare, once the case has worked out the cause).
func (t *T) Diagnose(diagnosis string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.failures) - 1; i >= 0; i-- {
		if t.failures[i].Diagnosis == "" {
			t.failures[i].Diagnosis = diagnosis
			return
		}
	}
}

// Status returns the result so far.
func (t *T) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.status
}

// Failed reports whether the case has failed or errored so far.
func (t *T) Failed() bool {
	s := t.Status()
	return s == StatusFail || s == StatusError
}

// Failures returns the failures recorded so far.
func (t *T) Failures() []Failure {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Failure(nil), t.failures...)
}

// Errors returns the errors recorded with Error.
func (t *T) Errors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errs...)
}

// SkipReason returns why the case was skipped.
func (t *T) SkipReason() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skip
}

// Outputs returns a copy of the recorded outputs.
func (t *T) Outputs() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]string, len(t.outputs))
	for k, v := range t.outputs {
		m[k] = v
	}
	return m
}

// Logs returns the recorded notes.
func (t *T) Logs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.logs...)
}
