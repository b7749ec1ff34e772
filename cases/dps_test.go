package cases

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/reference"
)

func TestCheckPolling(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	req := func(after time.Duration, status int) mockdps.Request {
		return mockdps.Request{Time: t0.Add(after), Method: http.MethodGet, RequestURI: "/s/registrations/d/operations/1", Status: status}
	}
	tests := []struct {
		name       string
		seq        []mockdps.Request
		retryAfter []string
		fail       bool
	}{
		{"waits", []mockdps.Request{req(0, 202), req(3*time.Second, 202), req(6100*time.Millisecond, 200)}, []string{"3", "3"}, false},
		{"a little early is tolerated", []mockdps.Request{req(0, 202), req(2900*time.Millisecond, 200)}, []string{"3"}, false},
		{"ignores Retry-After", []mockdps.Request{req(0, 202), req(50*time.Millisecond, 200)}, []string{"3"}, true},
		{"second poll too early", []mockdps.Request{req(0, 202), req(3*time.Second, 202), req(3100*time.Millisecond, 200)}, []string{"3", "3"}, true},
		{"no report: DPS default", []mockdps.Request{req(0, 202), req(time.Second, 200)}, nil, true},
		{"no 202", []mockdps.Request{req(0, 200)}, nil, false},
		{"zero Retry-After", []mockdps.Request{req(0, 202), req(10*time.Millisecond, 200)}, []string{"0"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := harness.NewT(newFakeBoard("fake", reference.DialectDefault), &harness.Env{})
			checkPolling(ct, tt.seq, tt.retryAfter)
			if failed := ct.Status() == harness.StatusFail; failed != tt.fail {
				t.Fatalf("failed = %v, want %v (%v)", failed, tt.fail, ct.Failures())
			}
			if tt.fail && ct.Failures()[0].Diagnosis != "ignores Retry-After" {
				t.Errorf("diagnosis %q", ct.Failures()[0].Diagnosis)
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
