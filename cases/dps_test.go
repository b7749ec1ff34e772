package cases

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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

func TestRequestsOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const opA, opB, opC = "5.aa.0001", "5.bb.0002", "5.cc.0003"
	reg := func(name, regID, nonce string, at int, status int, op string) mockdps.Request {
		body := `{"registrationId":"` + regID + `"`
		if nonce != "" {
			body += `,"payload":{"hiltestRun":"` + nonce + `"}`
		}
		return mockdps.Request{Time: t0.Add(time.Duration(at) * time.Second), Method: http.MethodPut,
			RequestURI: "/s/registrations/" + regID + "/register?api-version=2021-06-01", RegistrationID: regID,
			Body: []byte(body + "}"), Status: status, OperationID: op, RemoteAddr: name}
	}
	poll := func(name, regID string, at int, op string) mockdps.Request {
		return mockdps.Request{Time: t0.Add(time.Duration(at) * time.Second), Method: http.MethodGet,
			RequestURI: "/s/registrations/" + regID + "/operations/" + op + "?api-version=2021-06-01", RegistrationID: regID,
			Status: 200, OperationID: op, RemoteAddr: name}
	}
	// Boards a, b, c and d register the same id "dev"; c drops the payload,
	// d is refused. RemoteAddr names the request for the test.
	capture := []mockdps.Request{
		reg("old", "dev", "nonce-a", -1, 202, "5.00.0000"),
		reg("a0", "dev", "nonce-a", 1, 202, opA),
		reg("b0", "dev", "nonce-b", 2, 202, opB),
		poll("a1", "dev", 3, opA),
		reg("other", "other-dev", "nonce-o", 3, 202, "5.dd.0004"),
		poll("b1", "dev", 4, opB),
		poll("b2", "dev", 5, opB),
		poll("a2", "Dev", 6, opA),
		reg("c0", "dev", "", 7, 202, opC),
		poll("c1", "dev", 8, opC),
		reg("d0", "dev", "nonce-d", 9, 401, ""),
	}
	tests := []struct {
		name              string
		start             int
		nonce, reportedOp string
		want              []string
	}{
		{"by nonce and answered operation", 0, "nonce-a", opA, []string{"a0", "a1", "a2"}},
		{"board reported no operation", 0, "nonce-a", "", []string{"a0", "a1", "a2"}},
		{"board reported another board's operation", 0, "nonce-a", opB, []string{"a0", "a1", "a2"}},
		{"other board", 0, "nonce-b", opB, []string{"b0", "b1", "b2"}},
		{"payload dropped: reported operation", 0, "nonce-c", opC, []string{"c0", "c1"}},
		{"payload dropped, no operation reported", 0, "nonce-c", "", nil},
		{"register refused", 0, "nonce-d", "", []string{"d0"}},
		{"requests before the start are not its own", 2, "nonce-a", opA, []string{"a1", "a2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, q := range requestsOf(capture, "dev", t0.Add(time.Duration(tt.start)*time.Second), tt.nonce, tt.reportedOp) {
				got = append(got, q.RemoteAddr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("requests %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBoardRequestsSharedRegistrationID registers one individual enrollment
// from several fake boards at once: each board's register request and polls
// are told apart from the others' even when a board reports no operation id.
func TestBoardRequestsSharedRegistrationID(t *testing.T) {
	// Retry-After 1 and an assignment delay of 1.5 s: two polls per board,
	// interleaved with the other boards'.
	env := mockEnvOptions(t, mockdps.Options{RetryAfter: 1, AssignDelay: 1500 * time.Millisecond})
	e := env.DPS.Enrollments.Individual[0]
	const boardsN = 3
	results := make([]*registerResult, boardsN)
	cts := make([]*harness.T, boardsN)
	var wg sync.WaitGroup
	for i := range boardsN {
		cts[i] = harness.NewT(newFakeBoard(fmt.Sprintf("fake-%d", i), reference.DialectDefault), env)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			results[i], _ = register(ctx, cts[i], registration{RegID: e.RegistrationID, Key: e.PrimaryKey})
		})
	}
	wg.Wait()
	seen := map[string]int{} // remote address + time of each request -> board
	for i, r := range results {
		if r == nil || r.Status != "assigned" {
			t.Fatalf("board %d: %+v %v", i, r, cts[i].Failures())
		}
		if i == boardsN-1 {
			r.Op = "" // as if the board had not reported it
		}
		seq := boardRequests(cts[i], r)
		if len(seq) != 3 {
			t.Fatalf("board %d: %d requests, want register and two polls: %v", i, len(seq), seq)
		}
		if !isRegisterRequest(seq[0]) || !strings.Contains(string(seq[0].Body), r.Nonce) || seq[0].OperationID == "" {
			t.Errorf("board %d: first request %s %s %s", i, seq[0].Method, seq[0].RequestURI, seq[0].Body)
		}
		for _, q := range seq[1:] {
			if op, ok := polledOperation(q); !ok || op != seq[0].OperationID {
				t.Errorf("board %d: poll %s is not for its operation %s", i, q.RequestURI, seq[0].OperationID)
			}
		}
		if got := []int{seq[0].Status, seq[1].Status, seq[2].Status}; !slices.Equal(got, []int{202, 202, 200}) {
			t.Errorf("board %d: statuses %v", i, got)
		}
		for _, q := range seq {
			k := q.RemoteAddr + q.Time.String()
			if j, dup := seen[k]; dup {
				t.Errorf("request %s %s attributed to boards %d and %d", q.Method, q.RequestURI, j, i)
			}
			seen[k] = i
		}
		ct := harness.NewT(newFakeBoard("check", reference.DialectDefault), env)
		checkPolling(ct, seq, r.RetryAfter)
		if ct.Status() == harness.StatusFail {
			t.Errorf("board %d: polling check: %v", i, ct.Failures())
		}
	}
	if n := len(env.DPS.Mock.Requests()); n != 3*boardsN {
		t.Errorf("the mock DPS captured %d requests, want %d", n, 3*boardsN)
	}
}

func TestPolledOperation(t *testing.T) {
	tests := []struct {
		method, uri string
		op          string
		ok          bool
	}{
		{http.MethodGet, "/0ne00DEMO01/registrations/dev/operations/5.abc?api-version=2021-06-01", "5.abc", true},
		{http.MethodGet, "0ne00DEMO01/registrations/dev/operations/5.abc", "5.abc", true},
		{http.MethodGet, "/s/registrations/dev/operations/a%2Fb", "a/b", true},
		{http.MethodGet, "/s/registrations/dev/operations/%zz", "", false},
		{http.MethodGet, "/s/registrations/dev/operations/", "", false},
		{http.MethodGet, "/s/registrations/dev/operations", "", false},
		{http.MethodGet, "/s/registrations/dev/operations/op/more", "", false},
		{http.MethodGet, "/s/registrations/dev/register", "", false},
		{http.MethodGet, "/s/enrollments/dev/operations/op", "", false},
		{http.MethodGet, "/s/registrations/dev/status/op", "", false},
		{http.MethodPut, "/s/registrations/dev/operations/op", "", false},
		{http.MethodGet, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.uri, func(t *testing.T) {
			op, ok := polledOperation(mockdps.Request{Method: tt.method, RequestURI: tt.uri})
			if op != tt.op || ok != tt.ok {
				t.Errorf("polledOperation = %q, %v; want %q, %v", op, ok, tt.op, tt.ok)
			}
		})
	}
}
