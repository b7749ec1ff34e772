package mockdps

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

func TestRegisterAssignedFlow(t *testing.T) {
	clk := newClock()
	s := NewTestServer(t, Options{Now: clk.Now})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	c := dialRaw(t, s)

	put := registerBytes(t, s, DemoDevice1, tok)
	r := c.do(put)
	if r.Status != http.StatusAccepted {
		t.Fatalf("register: status %d, body %s", r.Status, r.Body)
	}
	opID, _ := r.JSON["operationId"].(string)
	if opID == "" || r.JSON["status"] != "assigning" || len(r.JSON) != 2 {
		t.Fatalf("register body = %s, want {operationId, status: assigning}", r.Body)
	}
	for name, want := range map[string]string{
		"Retry-After":  "3",
		"Content-Type": "application/json; charset=utf-8",
		"Location":     "https://" + s.Host() + "/" + DemoIDScope + "/registrations/" + DemoDevice1 + "/register",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if len(r.Header.Get("x-ms-request-id")) != 36 {
		t.Errorf("x-ms-request-id = %q, want a UUID", r.Header.Get("x-ms-request-id"))
	}

	get := operationBytes(t, s, DemoDevice1, opID, tok)
	r = c.do(get)
	if r.Status != http.StatusOK {
		t.Fatalf("operation: status %d, body %s", r.Status, r.Body)
	}
	var os struct {
		OperationID       string
		Status            string
		RegistrationState map[string]any
	}
	if err := json.Unmarshal(r.Body, &os); err != nil {
		t.Fatal(err)
	}
	if os.OperationID != opID || os.Status != "assigned" {
		t.Fatalf("operation body = %s", r.Body)
	}
	st := os.RegistrationState
	want := map[string]any{
		"registrationId": DemoDevice1, "assignedHub": DemoHub1, "deviceId": DemoDevice1,
		"status": "assigned", "substatus": "initialAssignment",
		"createdDateTimeUtc": "2026-12-04T12:00:00.0000000Z", "lastUpdatedDateTimeUtc": "2026-12-04T12:00:00.0000000Z",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("registrationState.%s = %v, want %v", k, st[k], v)
		}
	}
	if e, _ := st["etag"].(string); e == "" {
		t.Errorf("registrationState.etag missing")
	}
	if _, ok := st["symmetricKey"]; ok {
		t.Errorf("individual enrollment result has symmetricKey.enrollmentGroupId")
	}

	// Captured exactly as sent, one entry per request on the keep-alive conn.
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("captured %d requests, want 2", len(reqs))
	}
	if !bytes.Equal(reqs[0].Raw, put) || !bytes.Equal(reqs[1].Raw, get) {
		t.Errorf("captured raw bytes differ from the bytes sent:\n%q\n%q", reqs[0].Raw, put)
	}
	if reqs[0].Status != 202 || reqs[1].Status != 200 || reqs[0].RegistrationID != DemoDevice1 {
		t.Errorf("captured status/registration = %d %d %q", reqs[0].Status, reqs[1].Status, reqs[0].RegistrationID)
	}
	if len(s.Diagnoses()) != 0 {
		t.Errorf("diagnoses for an accepted flow: %v", s.Diagnoses())
	}
}

func TestAssignDelay(t *testing.T) {
	clk := newClock()
	s := NewTestServer(t, Options{Now: clk.Now, AssignDelay: 5 * time.Second, RetryAfter: 2})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1SecondaryKey}).Token
	c := dialRaw(t, s)
	r := c.do(registerBytes(t, s, DemoDevice1, tok))
	opID := r.JSON["operationId"].(string)
	get := operationBytes(t, s, DemoDevice1, opID, tok)

	clk.Advance(4 * time.Second)
	r = c.do(get)
	if r.Status != http.StatusAccepted || r.JSON["status"] != "assigning" || r.Header.Get("Retry-After") != "2" {
		t.Fatalf("before the delay: %d %s Retry-After %q", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	st := r.JSON["registrationState"].(map[string]any)
	if st["registrationId"] != DemoDevice1 || st["status"] != "assigning" {
		t.Errorf("stage-2 registrationState = %v", st)
	}
	clk.Advance(time.Second)
	r = c.do(get)
	if r.Status != http.StatusOK || r.JSON["status"] != "assigned" {
		t.Fatalf("after the delay: %d %s", r.Status, r.Body)
	}
}

func TestRetryAfterImmediate(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now, RetryAfter: RetryImmediately})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	r := dialRaw(t, s).do(registerBytes(t, s, DemoDevice1, tok))
	if r.Header.Get("Retry-After") != "0" {
		t.Fatalf("Retry-After = %q, want 0", r.Header.Get("Retry-After"))
	}
}

func TestGroupEnrollmentHashed(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	c := dialRaw(t, s)
	hubs := map[string]int{}
	for i := range 12 {
		id := fmt.Sprintf("grp-dev-%02d", i)
		tok := sas(t, reference.SASParams{RegistrationID: id, Key: derive(t, DemoGroupPrimaryKey, id)}).Token
		r := c.do(registerBytes(t, s, id, tok))
		if r.Status != 202 {
			t.Fatalf("%s: register %d %s (%v)", id, r.Status, r.Body, s.Diagnoses())
		}
		r = c.do(operationBytes(t, s, id, r.JSON["operationId"].(string), tok))
		st := r.JSON["registrationState"].(map[string]any)
		if st["deviceId"] != id || st["status"] != "assigned" {
			t.Fatalf("%s: state %v", id, st)
		}
		if g := st["symmetricKey"].(map[string]any)["enrollmentGroupId"]; g != DemoGroup {
			t.Errorf("%s: enrollmentGroupId = %v", id, g)
		}
		hub := st["assignedHub"].(string)
		if hub != DemoHub1 && hub != DemoHub2 {
			t.Fatalf("%s: hub %q not one of the group's", id, hub)
		}
		hubs[hub]++
		// Hashed allocation is stable per registration id.
		p := principal{group: s.enr.groups[0]}
		if h, _, _ := p.assignment(strings.ToUpper(id)); h != hub {
			t.Errorf("%s: allocation not stable across case: %s vs %s", id, h, hub)
		}
	}
	if len(hubs) != 2 {
		t.Errorf("12 devices all landed on %v; hashed allocation should use both hubs", hubs)
	}
	// The secondary group key works too.
	id := "grp-secondary"
	tok := sas(t, reference.SASParams{RegistrationID: id, Key: derive(t, DemoGroupSecondaryKey, id)}).Token
	if r := c.do(registerBytes(t, s, id, tok)); r.Status != 202 {
		t.Errorf("secondary group key: %d", r.Status)
	}
}

func TestReRegistrationSubstatus(t *testing.T) {
	tests := []struct {
		apiVersion string
		want       []string
	}{
		{"2019-03-31", []string{"initialAssignment", "initialAssignment"}},
		{"2021-06-01", []string{"initialAssignment", "reprovisionedToInitialAssignment"}},
		{"2021-10-01", []string{"initialAssignment", "reprovisionedToInitialAssignment"}},
	}
	for _, tc := range tests {
		t.Run(tc.apiVersion, func(t *testing.T) {
			clk := newClock()
			s := NewTestServer(t, Options{Now: clk.Now})
			tok := sas(t, reference.SASParams{RegistrationID: DemoDevice2, Key: DemoDevice2PrimaryKey}).Token
			c := dialRaw(t, s)
			var created string
			for i, want := range tc.want {
				p := reference.RequestParams{Endpoint: s.Host(), APIVersion: tc.apiVersion, IDScope: DemoIDScope, RegistrationID: DemoDevice2, Token: tok}
				b, _ := reference.RegisterRequestBytes(p)
				r := c.do(b)
				p.OperationID = r.JSON["operationId"].(string)
				b, _ = reference.OperationStatusRequestBytes(p)
				r = c.do(b)
				st := r.JSON["registrationState"].(map[string]any)
				if st["substatus"] != want {
					t.Errorf("registration %d: substatus %v, want %s", i+1, st["substatus"], want)
				}
				if st["deviceId"] != DemoDevice2DeviceID || st["assignedHub"] != DemoHub2 {
					t.Errorf("state %v", st)
				}
				if pl, _ := json.Marshal(st["payload"]); string(pl) != DemoDevice2Payload {
					t.Errorf("payload = %s, want %s", pl, DemoDevice2Payload)
				}
				if i == 0 {
					created = st["createdDateTimeUtc"].(string)
				} else if st["createdDateTimeUtc"] != created || st["lastUpdatedDateTimeUtc"] == created {
					t.Errorf("re-registration: created %v (first %s), lastUpdated %v", st["createdDateTimeUtc"], created, st["lastUpdatedDateTimeUtc"])
				}
				clk.Advance(time.Minute)
			}
		})
	}
}

func TestRegistrationStatusLookup(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	c := dialRaw(t, s)
	r := c.do(statusBytes(t, s, DemoDevice1, tok))
	if r.Status != http.StatusNotFound {
		t.Fatalf("status before registering: %d %s", r.Status, r.Body)
	}
	r = c.do(registerBytes(t, s, DemoDevice1, tok))
	c.do(operationBytes(t, s, DemoDevice1, r.JSON["operationId"].(string), tok))
	r = c.do(statusBytes(t, s, DemoDevice1, tok))
	if r.Status != http.StatusOK {
		t.Fatalf("status: %d %s", r.Status, r.Body)
	}
	// DeviceRegistrationResult itself, not wrapped in an operation status.
	if _, wrapped := r.JSON["registrationState"]; wrapped || r.JSON["assignedHub"] != DemoHub1 || r.JSON["registrationId"] != DemoDevice1 {
		t.Errorf("status body = %s", r.Body)
	}
}

func TestDisabledEnrollment(t *testing.T) {
	tests := []struct {
		name, regID, key, who string
	}{
		{"individual", DemoDisabledDevice, DemoDisabledDevicePrimaryKey, `individual enrollment "demo-disabled"`},
		{"group", "dev-in-disabled-group", derive(t, DemoDisabledGroupPrimaryKey, "dev-in-disabled-group"), `enrollment group "demo-group-disabled"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewTestServer(t, Options{Now: newClock().Now, Explain: true})
			tok := sas(t, reference.SASParams{RegistrationID: tc.regID, Key: tc.key}).Token
			c := dialRaw(t, s)
			r := c.do(registerBytes(t, s, tc.regID, tok))
			if r.Status != 202 {
				t.Fatalf("register: %d %s", r.Status, r.Body)
			}
			r = c.do(operationBytes(t, s, tc.regID, r.JSON["operationId"].(string), tok))
			st := r.JSON["registrationState"].(map[string]any)
			if r.Status != 200 || r.JSON["status"] != "disabled" || st["status"] != "disabled" || st["assignedHub"] != nil {
				t.Fatalf("operation: %d %s", r.Status, r.Body)
			}
			d := lastDiag(t, s)
			if d.Cause != CauseDisabled || !strings.Contains(d.Received, tc.who) {
				t.Errorf("diagnosis = %+v", d)
			}
			if !strings.HasPrefix(r.Header.Get("x-hiltest-diagnosis"), "disabled:") {
				t.Errorf("x-hiltest-diagnosis = %q", r.Header.Get("x-hiltest-diagnosis"))
			}
		})
	}
}

func TestReferenceClientEndToEnd(t *testing.T) {
	s := NewTestServer(t, Options{AssignDelay: 0, RetryAfter: 1})
	cl, err := reference.NewClient(reference.ClientOptions{
		Endpoint: s.Host(), RootCAs: s.CertPool(),
		Wait: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	tests := []struct {
		name, regID, key, hub string
		dialect               reference.Dialect
	}{
		{"individual default", DemoDevice1, DemoDevice1PrimaryKey, DemoHub1, reference.DialectDefault},
		{"individual sdk-for-c", DemoDevice2, DemoDevice2SecondaryKey, DemoHub2, reference.DialectAzureSDKForC},
		{"group iot-sdk-c", "ref-client-dev", derive(t, DemoGroupPrimaryKey, "ref-client-dev"), "", reference.DialectAzureIoTSDKC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cl.Register(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: tc.regID, Key: tc.key, Dialect: tc.dialect})
			if err != nil {
				t.Fatalf("register: %v (diagnoses %v)", err, s.Diagnoses())
			}
			if res.Status != "assigned" || res.RegistrationState == nil || res.RegistrationState.DeviceID == "" {
				t.Fatalf("result %+v", res)
			}
			if tc.hub != "" && res.RegistrationState.AssignedHub != tc.hub {
				t.Errorf("hub %s, want %s", res.RegistrationState.AssignedHub, tc.hub)
			}
			if len(res.Exchanges) != 2 || res.Exchanges[0].Status != 202 || res.Exchanges[1].Status != 200 {
				t.Errorf("exchanges: %+v", res.Exchanges)
			}
			st, _, err := cl.RegistrationStatus(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: tc.regID, Key: tc.key, Dialect: tc.dialect})
			if err != nil || st.Status != "assigned" {
				t.Errorf("registration status: %+v %v", st, err)
			}
		})
	}
	// A rejected registration surfaces as the service's 401002.
	_, err = cl.Register(ctx, reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: DemoDevice1, Key: DemoGroupPrimaryKey})
	var se *reference.ServiceError
	if !errorsAs(err, &se) || se.StatusCode != 401 || se.ErrorCode != 401002 || se.Message != "Unauthorized" {
		t.Fatalf("wrong key: err = %v", err)
	}
	if d := lastDiag(t, s); d.Cause != CauseWrongKey {
		t.Errorf("diagnosis %s", d.String())
	}
}

// The reference client polls honouring Retry-After until the assignment
// delay has passed; its waits advance the mock's clock, so the flow is
// deterministic: PUT at 0 s, GETs at 2 s and 4 s (assigning), 6 s (assigned).
func TestReferenceClientPolling(t *testing.T) {
	clk := newClock()
	s := NewTestServer(t, Options{Now: clk.Now, AssignDelay: 5 * time.Second, RetryAfter: 2})
	var waits []time.Duration
	cl, err := reference.NewClient(reference.ClientOptions{
		Endpoint: s.Host(), RootCAs: s.CertPool(), Now: clk.Now,
		Wait: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			clk.Advance(d)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const id = "polling-dev"
	res, err := cl.Register(context.Background(), reference.RegisterParams{IDScope: s.IDScope(), RegistrationID: id,
		Key: derive(t, DemoGroupPrimaryKey, id), Dialect: reference.DialectAzureSDKForC})
	if err != nil {
		t.Fatalf("register: %v (%v)", err, s.Diagnoses())
	}
	var statuses []int
	for _, ex := range res.Exchanges {
		statuses = append(statuses, ex.Status)
	}
	if !slices.Equal(statuses, []int{202, 202, 202, 200}) || len(waits) != 3 || waits[0] != 2*time.Second {
		t.Fatalf("exchanges %v, waits %v", statuses, waits)
	}
	st := res.RegistrationState
	if res.Status != "assigned" || st.DeviceID != id || st.CreatedDateTimeUTC != "2026-12-04T12:00:06.0000000Z" {
		t.Errorf("result %+v", st)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[1].Method != "GET" || !strings.Contains(reqs[1].RequestURI, "/operations/"+res.OperationID+"?") {
		t.Errorf("captured %d requests; second %s %s", len(reqs), reqs[1].Method, reqs[1].RequestURI)
	}
}

// TestOperationsOfOneID registers one id more often than the mock remembers
// operations before polling any: the latest maxOpsPerDevice operations are
// all answered, the older ones are unknown (404).
func TestOperationsOfOneID(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	c := dialRaw(t, s)
	put := registerBytes(t, s, DemoDevice1, tok)
	const extra = 2
	ops := make([]string, 0, maxOpsPerDevice+extra)
	for range maxOpsPerDevice + extra {
		r := c.do(put)
		op, _ := r.JSON["operationId"].(string)
		if r.Status != http.StatusAccepted || op == "" {
			t.Fatalf("register %d: status %d, body %s", len(ops), r.Status, r.Body)
		}
		ops = append(ops, op)
	}
	tests := []struct {
		name string
		i    int
		want int
	}{
		{"oldest", 0, http.StatusNotFound},
		{"last forgotten", extra - 1, http.StatusNotFound},
		{"oldest remembered", extra, http.StatusOK},
		{"middle", extra + maxOpsPerDevice/2, http.StatusOK},
		{"latest", len(ops) - 1, http.StatusOK},
	}
	for _, tt := range tests {
		if r := c.do(operationBytes(t, s, DemoDevice1, ops[tt.i], tok)); r.Status != tt.want {
			t.Errorf("%s: poll of operation %d: status %d, want %d (%s)", tt.name, tt.i, r.Status, tt.want, r.Body)
		}
	}
}

// TestSharedIDBench registers one individual enrollment from 64 boards
// before any polls: every board's operation is still known.
func TestSharedIDBench(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice2, Key: DemoDevice2PrimaryKey}).Token
	c := dialRaw(t, s)
	put := registerBytes(t, s, DemoDevice2, tok)
	var ops []string
	for range 64 {
		r := c.do(put)
		op, _ := r.JSON["operationId"].(string)
		if r.Status != http.StatusAccepted || op == "" {
			t.Fatalf("register %d: status %d, body %s", len(ops), r.Status, r.Body)
		}
		ops = append(ops, op)
	}
	for i, op := range ops {
		if r := c.do(operationBytes(t, s, DemoDevice2, op, tok)); r.Status != http.StatusOK {
			t.Errorf("board %d: poll: status %d (%s)", i, r.Status, r.Body)
		}
	}
}
