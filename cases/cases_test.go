package cases

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// mockEnv starts a mock DPS serving the demo enrollments and returns an
// Env pointing at it.
func mockEnv(t *testing.T, retryAfter int) *harness.Env {
	t.Helper()
	return mockEnvOptions(t, mockdps.Options{RetryAfter: retryAfter})
}

// mockEnvOptions is mockEnv with the mock DPS's options.
func mockEnvOptions(t *testing.T, opts mockdps.Options) *harness.Env {
	t.Helper()
	s := mockdps.NewTestServer(t, opts)
	host, port, err := net.SplitHostPort(s.Host())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &harness.Env{DPS: harness.DPSTarget{Host: host, Port: p, CAPEM: s.CAPEM(), IDScope: s.IDScope(),
		APIVersion: reference.DefaultAPIVersion, Mock: s, Enrollments: mockdps.DemoEnrollments()}, Now: time.Now}
}

// runCase runs one case on a board the way the runner does: skipped when
// the board lacks a capability, with a timeout.
func runCase(t *testing.T, c harness.Case, b harness.Board, env *harness.Env) *harness.T {
	t.Helper()
	ct := harness.NewT(b, env)
	for _, r := range c.Requires {
		if !b.Info().HasCap(r) {
			ct.Skip("needs " + r)
			return ct
		}
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c.Run(ctx, ct)
	return ct
}

// describe is a case's result for test logs.
func describe(c harness.Case, ct *harness.T) string {
	var b strings.Builder
	b.WriteString(c.ID + ": " + string(ct.Status()))
	if ct.SkipReason() != "" {
		b.WriteString(" (" + ct.SkipReason() + ")")
	}
	for _, f := range ct.Failures() {
		b.WriteString("\n    " + f.Message)
		if f.Diagnosis != "" {
			b.WriteString("\n    diagnosis: " + f.Diagnosis)
		}
	}
	return b.String()
}

// allowedSkip are cases a healthy board may skip in these tests.
var allowedSkip = map[string]bool{}

func TestBuiltinOnHealthyFakeBoard(t *testing.T) {
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range reference.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			// Retry-After 0 keeps the test fast; polling is checked in
			// TestSeededBugsAreDiagnosed and on the simulator.
			env := mockEnv(t, mockdps.RetryImmediately)
			env.Declared.Dialect = string(d)
			b := newFakeBoard("fake-"+string(d), d)
			for _, c := range cs {
				ct := runCase(t, c, b, env)
				switch ct.Status() {
				case harness.StatusPass:
				case harness.StatusSkip:
					if !strings.HasPrefix(c.ID, "sas/kat/") && !allowedSkip[c.ID] {
						t.Errorf("%s", describe(c, ct))
					}
				default:
					t.Errorf("%s", describe(c, ct))
				}
			}
		})
	}
}

func TestSeededBugsAreDiagnosed(t *testing.T) {
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"sign-with-group-key":   "signed with the group key instead of the derived device key",
		"derive-from-text":      "derived from the group key's base64 text instead of its decoded bytes",
		"sr-not-encoded":        "sr not URL-encoded",
		"sig-not-encoded":       "signature not URL-encoded",
		"no-skn":                "missing skn",
		"unset-clock":           "unset clock",
		"wrong-dialect":         "valid azure-iot-sdk-c token, but the bench declared default",
		"expiry-32bit":          "expiry truncated to 32 bits",
		"ignore-retry-after":    "ignores Retry-After",
		"misreport-retry-after": "misreports Retry-After",
		"wrong-api-version":     "wrong api-version",
		"body-regid-lowercase":  "body registrationId",
		"truncated-token":       "truncated token",
	}
	for _, bug := range fakeBugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			phrase, ok := want[bug]
			if !ok {
				t.Fatalf("no expected diagnosis for %s", bug)
			}
			retryAfter := mockdps.RetryImmediately
			if bug == "ignore-retry-after" || bug == "misreport-retry-after" {
				retryAfter = 1
			}
			env := mockEnv(t, retryAfter)
			env.Declared.Dialect = "default"
			b := newFakeBoard("fake-"+bug, reference.DialectDefault, bug)
			failed, named := 0, false
			for _, c := range cs {
				ct := runCase(t, c, b, env)
				if ct.Status() != harness.StatusFail {
					continue
				}
				failed++
				for _, f := range ct.Failures() {
					if strings.Contains(f.Diagnosis, phrase) {
						named = true
					}
				}
				t.Logf("%s", describe(c, ct))
			}
			if !named {
				t.Errorf("bug %s: %d cases failed, none with a diagnosis naming %q", bug, failed, phrase)
			}
		})
	}
}

func TestDialectMismatchIsNamed(t *testing.T) {
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]harness.Case{}
	for _, c := range cs {
		byID[c.ID] = c
	}
	tests := []struct {
		name     string
		declared string
		board    reference.Dialect
		bugs     []string
		caseID   string
		want     string
	}{
		{"bench declares another dialect", "azure-iot-sdk-c", reference.DialectDefault, nil, "sas/policy/firmware-default",
			"valid default token, but the bench declared azure-iot-sdk-c"},
		{"bench and HELLO disagree", "azure-iot-sdk-c", reference.DialectDefault, nil, "proto/dialect-declared",
			"wrong dialect: the bench file and the firmware disagree"},
		{"firmware emits another dialect than HELLO says", "", reference.DialectDefault, []string{"wrong-dialect"}, "sas/policy/firmware-default",
			"valid azure-iot-sdk-c token, but the board reported in HELLO default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &harness.Env{Declared: boards.BenchBoard{Name: "fake", Dialect: tt.declared}, Now: time.Now}
			ct := runCase(t, byID[tt.caseID], newFakeBoard("fake", tt.board, tt.bugs...), env)
			if ct.Status() != harness.StatusFail {
				t.Fatalf("%s", describe(byID[tt.caseID], ct))
			}
			found := false
			for _, f := range ct.Failures() {
				found = found || strings.Contains(f.Diagnosis, tt.want)
			}
			if !found {
				t.Errorf("no diagnosis contains %q:\n%s", tt.want, describe(byID[tt.caseID], ct))
			}
		})
	}
}

// noBlobBoard is a fake board without the blob capability whose Call
// refuses, as a session does, a request longer than the board's frames.
type noBlobBoard struct{ *fakeBoard }

func (b noBlobBoard) Info() harness.BoardInfo {
	in := b.fakeBoard.Info()
	in.Caps = []string{"ping"}
	return in
}

func (b noBlobBoard) Call(ctx context.Context, verb string, args ...protocol.Arg) (*protocol.Frame, error) {
	if n := protocol.EncodedFrameLen(protocol.NewRequest(65535, verb, args...)); n > b.Info().MaxFrame {
		return nil, fmt.Errorf("request is %d bytes, the board takes at most %d and has no \"blob\" capability", n, b.Info().MaxFrame)
	}
	return b.fakeBoard.Call(ctx, verb, args...)
}

func TestPingOverMaxWithoutBlobs(t *testing.T) {
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID != "proto/ping/over-max" && c.ID != "proto/ping/max-frame" {
			continue
		}
		ct := runCase(t, c, noBlobBoard{newFakeBoard("fake", reference.DialectDefault)}, &harness.Env{})
		if ct.Status() != harness.StatusPass {
			t.Errorf("%s", describe(c, ct))
		}
	}
}
