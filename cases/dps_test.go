package cases

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

func TestCheckPolling(t *testing.T) {
	const (
		ignores    = "ignores Retry-After"
		misreports = "misreports Retry-After"
		none       = -1
	)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// req is a captured request at t0+after answered with status and
	// Retry-After ra (none: no header).
	req := func(after time.Duration, status, ra int) mockdps.Request {
		return mockdps.Request{Time: t0.Add(after), Method: http.MethodGet, RequestURI: "/s/registrations/d/operations/1", Status: status,
			HasRetryAfter: ra != none, RetryAfter: ra}
	}
	ms := time.Millisecond
	tests := []struct {
		name     string
		seq      []mockdps.Request
		reported []string
		want     []string // diagnoses, in order
	}{
		{"waits", []mockdps.Request{req(0, 202, 3), req(3*time.Second, 202, 3), req(6100*ms, 200, none)}, []string{"3", "3"}, nil},
		{"within the tolerance", []mockdps.Request{req(0, 202, 3), req(2960*ms, 200, none)}, []string{"3"}, nil},
		{"just beyond the tolerance", []mockdps.Request{req(0, 202, 3), req(2940*ms, 200, none)}, []string{"3"}, []string{ignores}},
		{"ignores Retry-After", []mockdps.Request{req(0, 202, 3), req(50*ms, 200, none)}, []string{"3"}, []string{ignores}},
		{"second poll too early", []mockdps.Request{req(0, 202, 3), req(3*time.Second, 202, 3), req(3100*ms, 200, none)}, []string{"3", "3"}, []string{ignores}},
		{"the mock's value counts, not the board's", []mockdps.Request{req(0, 202, 2), req(2*time.Second, 200, none)}, []string{"5"}, []string{misreports}},
		{"ignores and reports 0", []mockdps.Request{req(0, 202, 1), req(50*ms, 202, 1), req(100*ms, 200, none)}, []string{"0", "0"}, []string{ignores, misreports}},
		{"reports none", []mockdps.Request{req(0, 202, 1), req(time.Second, 200, none)}, nil, []string{misreports}},
		{"reports one too many", []mockdps.Request{req(0, 202, 1), req(time.Second, 200, none)}, []string{"1", "1"}, []string{misreports}},
		{"reported with spaces and a leading zero", []mockdps.Request{req(0, 202, 1), req(time.Second, 200, none)}, []string{" 01"}, nil},
		{"throttled answer honoured too", []mockdps.Request{req(0, 429, 7), req(time.Second, 202, 3)}, []string{"7", "3"}, []string{ignores}},
		{"no Retry-After sent", []mockdps.Request{req(0, 200, none)}, nil, nil},
		{"zero Retry-After", []mockdps.Request{req(0, 202, 0), req(10*ms, 200, none)}, []string{"0"}, nil},
		{"last answer's Retry-After has no next request", []mockdps.Request{req(0, 202, 3)}, []string{"3"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := harness.NewT(newFakeBoard("fake", reference.DialectDefault), &harness.Env{})
			checkPolling(ct, tt.seq, tt.reported)
			var got []string
			for _, f := range ct.Failures() {
				got = append(got, f.Diagnosis)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("diagnoses %q, want %q (%v)", got, tt.want, ct.Failures())
			}
			if failed := ct.Status() == harness.StatusFail; failed != (len(tt.want) > 0) {
				t.Errorf("status %s", ct.Status())
			}
		})
	}
}

func TestMemberID(t *testing.T) {
	tests := []struct{ board, suffix, want string }{
		{"sim-1", "group", "hiltest-sim-1-group"},
		{"Bench Board #2", "group2", "hiltest-bench-board--2-group2"},
		{strings.Repeat("x", 200), "g", strings.Repeat("x", 126) + "-g"},
	}
	for _, tt := range tests {
		ct := harness.NewT(newFakeBoard(tt.board, reference.DialectDefault), &harness.Env{Declared: boards.BenchBoard{Name: tt.board}})
		got := memberID(ct, tt.suffix)
		if err := reference.ValidateRegistrationID(got); err != nil {
			t.Errorf("memberID(%q) = %q: %v", tt.board, got, err)
		}
		if got != tt.want {
			t.Errorf("memberID(%q, %q) = %q, want %q", tt.board, tt.suffix, got, tt.want)
		}
	}
}

// caseByID returns the built-in case with that id.
func caseByID(t *testing.T, id string) harness.Case {
	t.Helper()
	cs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no case %s", id)
	return harness.Case{}
}

// TestRetryAfterCase runs the Retry-After case on fake boards against a
// mock DPS sending Retry-After: 1: the polling is judged from what the mock
// sent and saw, and what the board reports is checked separately.
func TestRetryAfterCase(t *testing.T) {
	c := caseByID(t, "dps/register/retry-after")
	tests := []struct {
		name string
		bugs []string
		want []string // diagnoses of the failures, in order
	}{
		{"healthy", nil, nil},
		{"ignores Retry-After, reports it", []string{"ignore-retry-after"}, []string{"ignores Retry-After"}},
		// Waits as asked but reports 0: the old check, trusting the
		// report, failed it as polling too early.
		{"honours Retry-After, reports 0", []string{"misreport-retry-after"}, []string{"misreports Retry-After"}},
		// Ignores it and reports 0: the old check, trusting the report,
		// passed it.
		{"ignores Retry-After, reports 0", []string{"ignore-retry-after", "misreport-retry-after"},
			[]string{"ignores Retry-After", "misreports Retry-After"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := mockEnv(t, 1)
			ct := runCase(t, c, newFakeBoard("fake-"+strings.Join(tt.bugs, "-"), reference.DialectDefault, tt.bugs...), env)
			var got []string
			for _, f := range ct.Failures() {
				got = append(got, f.Diagnosis)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("diagnoses %q, want %q\n%s", got, tt.want, describe(c, ct))
			}
			if len(tt.want) == 0 && ct.Status() != harness.StatusPass {
				t.Errorf("%s", describe(c, ct))
			}
		})
	}
}
