package cases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// clockSetEpoch: an expiry before 2000-01-01T00:00:00Z comes from a device
// clock that was never set (an ESP32 without SNTP counts from 1970).
const clockSetEpoch = 946684800

// boardDialect returns the SAS dialect a board is compared in: the one the
// bench declares for it, else the one it reported in HELLO (protocol/PROTOCOL.md
// §2). from says which, for messages ("the bench declared", "the board
// reported in HELLO").
func boardDialect(t *harness.T) (d reference.Dialect, from string, err error) {
	if t.Env != nil && t.Env.Declared.Dialect != "" {
		d, err := reference.ParseDialect(t.Env.Declared.Dialect)
		if err != nil {
			return "", "", fmt.Errorf("the bench's dialect for this board: %w", err)
		}
		return d, "the bench declared", nil
	}
	s := t.Board.Info().Dialect
	d, err = reference.ParseDialect(s)
	if err != nil {
		return "", "", fmt.Errorf("the board's HELLO dialect: %w", err)
	}
	if s == "" {
		return d, "the board reported no dialect in HELLO, so", nil
	}
	return d, "the board reported in HELLO", nil
}

// now returns the bench clock.
func now(t *harness.T) time.Time {
	if t.Env != nil && t.Env.Now != nil {
		return t.Env.Now()
	}
	return time.Now()
}

// call sends a request. It returns the answer, or the board's ERR as a
// *protocol.RemoteError; any other error (timeout, reset, lost board) is
// recorded with t.Error and ok is false: the case cannot go on.
func call(ctx context.Context, t *harness.T, verb string, args ...protocol.Arg) (f *protocol.Frame, remote *protocol.RemoteError, ok bool) {
	f, err := t.Board.Call(ctx, verb, args...)
	if err == nil {
		return f, nil, true
	}
	if errors.As(err, &remote) {
		return nil, remote, true
	}
	t.Error(fmt.Errorf("%s: %w", verb, err))
	return nil, nil, false
}

// mustCall is call where an ERR answer is a failure too.
func mustCall(ctx context.Context, t *harness.T, verb string, args ...protocol.Arg) (*protocol.Frame, bool) {
	f, remote, ok := call(ctx, t, verb, args...)
	if !ok {
		return nil, false
	}
	if remote != nil {
		t.Fail(harness.Failure{Message: fmt.Sprintf("%s answered ERR %s: %s%s", verb, remote.Code, remote.Message, errArg(remote))})
		return nil, false
	}
	return f, true
}

// errArg returns " (arg=x)" when an ERR frame names an argument.
func errArg(e *protocol.RemoteError) string {
	if e.Frame != nil && e.Frame.Has("arg") {
		return " (arg=" + e.Frame.String("arg") + ")"
	}
	return ""
}

// checkError checks an answer against an expected ERR code (and argument).
// It reports whether the board answered as expected.
func checkError(t *harness.T, verb string, f *protocol.Frame, remote *protocol.RemoteError, code protocol.Code, arg string) bool {
	want := string(code)
	if arg != "" {
		want += " arg=" + arg
	}
	if remote == nil {
		t.Fail(harness.Failure{Message: fmt.Sprintf("%s answered OK (%s), expected ERR %s", verb, redactedArgs(f), want),
			Diagnosis: "the board accepted an invalid request"})
		return false
	}
	if remote.Code != code {
		t.Fail(harness.Failure{Message: fmt.Sprintf("%s answered ERR %s, expected %s", verb, remote.Code, want),
			Diagnosis: fmt.Sprintf("wrong error code %s for this request", remote.Code)})
		return false
	}
	if arg != "" && remote.Frame != nil && remote.Frame.String("arg") != arg {
		got := remote.Frame.String("arg")
		if got == "" {
			got = "no arg"
		} else {
			got = "arg=" + got
		}
		t.Fail(harness.Failure{Message: fmt.Sprintf("%s answered ERR %s with %s, expected arg=%s", verb, remote.Code, got, arg),
			Diagnosis: "the error names the wrong argument"})
		return false
	}
	t.Logf("%s answered ERR %s%s: %s", verb, remote.Code, errArg(remote), remote.Message)
	return true
}

// redactedArgs lists a frame's arguments with secret values hidden.
func redactedArgs(f *protocol.Frame) string {
	if f == nil {
		return ""
	}
	var parts []string
	for _, a := range f.Args {
		v := string(a.Value)
		if protocol.IsSecret(a.Key) {
			v = "[redacted]"
		} else if len(v) > 40 {
			v = v[:40] + "…"
		}
		parts = append(parts, a.Key+"="+v)
	}
	return strings.Join(parts, " ")
}

// requireResults fails the case when results are missing from an answer.
func requireResults(t *harness.T, f *protocol.Frame, keys ...string) bool {
	var missing []string
	for _, k := range keys {
		if !f.Has(k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Fail(harness.Failure{Message: fmt.Sprintf("%s answer lacks %s", f.Verb, strings.Join(missing, ", ")),
			Diagnosis: "results missing from the answer (protocol/PROTOCOL.md §4)"})
		return false
	}
	return true
}

// compare records a failure when got differs from expected and returns the
// divergence (nil when equal).
func compare(t *harness.T, what string, expected, got string, secret bool, diagnosis string) *reference.Divergence {
	d := reference.FirstDivergence([]byte(expected), []byte(got))
	if d == nil {
		return nil
	}
	t.Fail(harness.Failure{Message: what + " " + d.String(), Diagnosis: diagnosis, Divergence: d, Secret: secret})
	return d
}

// withCaps returns base plus extra, without duplicates, in a stable order.
func withCaps(base []string, extra ...string) []string {
	out := slices.Clone(base)
	for _, c := range extra {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// setClock sets the board's clock to the bench's time (TIME.SET), so that
// expiries computed from a ttl are comparable. It returns the time set.
func setClock(ctx context.Context, t *harness.T) (int64, bool) {
	n := now(t).Unix()
	f, ok := mustCall(ctx, t, protocol.VerbTimeSet, protocol.Int("unix", n))
	if !ok {
		return 0, false
	}
	if got, err := f.Int("unix"); err != nil || got < n || got > n+5 {
		t.Fail(harness.Failure{Message: fmt.Sprintf("TIME.SET unix=%d answered unix=%s", n, f.String("unix")),
			Diagnosis: "the board did not set its clock"})
		return 0, false
	}
	return n, true
}
