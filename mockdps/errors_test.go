package mockdps

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

func TestSupportedAPIVersionsMatchReference(t *testing.T) {
	for _, v := range reference.SupportedAPIVersions() {
		if !supportedAPIVersion(v) {
			t.Errorf("reference supports %s, the mock does not", v)
		}
	}
	for _, v := range []string{"", "2018-11-01", "2021-06-01 ", "2025-07-01-preview"} {
		if supportedAPIVersion(v) {
			t.Errorf("mock accepts api-version %q", v)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	tok := func(id string) string {
		return sas(t, reference.SASParams{RegistrationID: id, Key: DemoDevice1PrimaryKey}).Token
	}
	good := tok(DemoDevice1)
	reg := "/" + DemoIDScope + "/registrations/" + DemoDevice1
	json1 := [2]string{"Content-Type", "application/json"}
	auth := [2]string{"Authorization", good}
	body := `{"registrationId":"` + DemoDevice1 + `"}`
	tests := []struct {
		name    string
		method  string
		uri     string
		headers [][2]string
		body    string
		status  int
		code    int
		cause   Cause
	}{
		{"missing api-version", "PUT", reg + "/register", [][2]string{json1, auth}, body, 400, codeBadAPIVersion, CauseBadAPIVersion},
		{"unknown api-version", "PUT", reg + "/register?api-version=2018-11-01", [][2]string{json1, auth}, body, 400, codeBadAPIVersion, CauseBadAPIVersion},
		{"unknown scope", "PUT", "/0ne00OTHER1/registrations/" + DemoDevice1 + "/register?api-version=2021-06-01", [][2]string{json1, auth}, body, 404, codeNotFound, CauseUnknownScope},
		{"body registrationId differs", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{json1, auth}, `{"registrationId":"demo-device-2"}`, 400, codeRegIDMismatch, CauseRegistrationIDBody},
		{"malformed JSON", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{json1, auth}, `{"registrationId":`, 400, codeBadBody, CauseMalformedBody},
		{"JSON without registrationId", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{json1, auth}, `{}`, 400, codeBadBody, CauseMalformedBody},
		{"wrong content type", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{{"Content-Type", "text/plain"}, auth}, body, 415, codeContentType, CauseWrongContentType},
		{"missing content type", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{auth}, body, 415, codeContentType, CauseWrongContentType},
		{"unknown operation id", "GET", reg + "/operations/5.0000000000000000.nope?api-version=2021-06-01", [][2]string{auth}, "", 404, codeUnknownOperation, CauseUnknownOperation},
		{"wrong method", "GET", reg + "/register?api-version=2021-06-01", [][2]string{auth}, "", 405, codeMethod, CauseMethodNotAllowed},
		{"unknown route", "GET", "/foo?api-version=2021-06-01", nil, "", 404, codeNotFound, CauseNotFound},
		{"invalid registration id", "PUT", "/" + DemoIDScope + "/registrations/bad%20id!/register?api-version=2021-06-01", [][2]string{json1, auth}, `{"registrationId":"bad id!"}`, 400, codeBadRegID, CauseBadRegistrationID},
		{"body too large", "PUT", reg + "/register?api-version=2021-06-01", [][2]string{json1, auth}, `{"registrationId":"` + DemoDevice1 + `","payload":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`, 413, codeTooLarge, CauseBodyTooLarge},
	}
	s := NewTestServer(t, Options{Now: newClock().Now})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, s).do(rawRequest(s.Host(), tc.method, tc.uri, tc.headers, tc.body))
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if r.JSON["errorCode"] != float64(tc.code) || r.Header.Get("x-ms-error-code") != strconv.Itoa(tc.code) {
				t.Errorf("errorCode %v / x-ms-error-code %q, want %d", r.JSON["errorCode"], r.Header.Get("x-ms-error-code"), tc.code)
			}
			for _, k := range []string{"trackingId", "message", "timestampUtc"} {
				if v, _ := r.JSON[k].(string); v == "" {
					t.Errorf("error body lacks %s: %s", k, r.Body)
				}
			}
			if ts, _ := r.JSON["timestampUtc"].(string); ts != "2026-12-04T12:00:00.0000000Z" {
				t.Errorf("timestampUtc %q", ts)
			}
			if d := lastDiag(t, s); d.Cause != tc.cause || d.Status != tc.status {
				t.Errorf("diagnosis %+v, want cause %s", d, tc.cause)
			}
		})
	}
}

// The body cap keeps the capture of a keep-alive connection in step: the
// request after an oversized one is captured exactly.
func TestBodyTooLargeThenNextRequest(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now, MaxBodyBytes: 100})
	c := dialRaw(t, s)
	big := rawRequest(s.Host(), "PUT", "/"+DemoIDScope+"/registrations/x/register?api-version=2021-06-01",
		[][2]string{{"Content-Type", "application/json"}}, strings.Repeat("x", 3000))
	if r := c.do(big); r.Status != 413 {
		t.Fatalf("status %d", r.Status)
	}
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	next := registerBytes(t, s, DemoDevice1, tok)
	r := c.do(next)
	if r.Status != 202 {
		t.Fatalf("next request: %d %s", r.Status, r.Body)
	}
	reqs := s.Requests()
	if got := reqs[len(reqs)-1].Raw; string(got) != string(next) {
		t.Errorf("next request captured as %q", got)
	}
}

func TestRateLimit(t *testing.T) {
	clk := newClock()
	s := NewTestServer(t, Options{Now: clk.Now, RateLimit: 1, RateBurst: 2, ThrottleRetryAfter: 7})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	c := dialRaw(t, s)
	req := registerBytes(t, s, DemoDevice1, tok)
	var got []int
	for range 3 {
		got = append(got, c.do(req).Status)
	}
	if got[0] != 202 || got[1] != 202 || got[2] != 429 {
		t.Fatalf("statuses %v, want 202 202 429", got)
	}
	r := c.do(req)
	if r.Status != 429 || r.Header.Get("Retry-After") != "7" || r.JSON["errorCode"] != float64(429001) {
		t.Errorf("throttled answer %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if d := lastDiag(t, s); d.Cause != CauseThrottled {
		t.Errorf("cause %s", d.Cause)
	}
	clk.Advance(time.Second)
	if st := c.do(req).Status; st != 202 {
		t.Errorf("after a second: %d", st)
	}
}

func TestFaults(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now, Faults: Fault{Mode: FaultServerError, Status: 503}})
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	req := registerBytes(t, s, DemoDevice1, tok)
	r := dialRaw(t, s).do(req)
	if r.Status != 503 || r.JSON["errorCode"] != float64(503001) {
		t.Fatalf("5xx fault: %d %s", r.Status, r.Body)
	}
	if d := lastDiag(t, s); d.Cause != CauseFault {
		t.Errorf("cause %s", d.Cause)
	}

	s.SetFault(Fault{Mode: FaultDrop})
	c := dialRaw(t, s)
	c.send(req)
	if _, err := http.ReadResponse(c.br, nil); err == nil {
		t.Fatalf("drop fault: got a response")
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; last.Status != 0 || last.Diagnosis == nil || last.Diagnosis.Cause != CauseFault {
		t.Errorf("dropped request captured as %+v", last)
	}

	// Every 2nd request only, at most once.
	s.SetFault(Fault{Mode: FaultServerError, Every: 2, Count: 1})
	c = dialRaw(t, s)
	var got []int
	for range 5 {
		got = append(got, c.do(req).Status)
	}
	if want := []int{202, 500, 202, 202, 202}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}

	s.SetFault(Fault{Mode: FaultSlow, Delay: time.Millisecond})
	if st := dialRaw(t, s).do(req).Status; st != 202 {
		t.Errorf("slow fault: %d", st)
	}
	s.SetFault(Fault{})
	if st := dialRaw(t, s).do(req).Status; st != 202 {
		t.Errorf("faults off: %d", st)
	}
}

func TestDiagnosesEndpoint(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	st := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice2PrimaryKey})
	c := dialRaw(t, s)
	c.do(registerBytes(t, s, DemoDevice1, st.Token))
	c.send(rawRequest(s.Host(), "GET", "/_mock/diagnoses", nil, ""))
	r := c.read()
	if r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	var ds []Diagnosis
	if err := json.Unmarshal(r.Body, &ds); err != nil || len(ds) != 1 || ds[0].Cause != CauseWrongKey {
		t.Fatalf("diagnoses %s (%v)", r.Body, err)
	}
	if strings.Contains(string(r.Body), st.Signature[:12]) {
		t.Errorf("diagnoses endpoint leaks the signature")
	}
	c.send(rawRequest(s.Host(), "GET", "/_mock/requests", nil, ""))
	r = c.read()
	if strings.Contains(string(r.Body), reference.DialectDefault.Encode(st.Signature)[:12]) || !strings.Contains(string(r.Body), "redacted") {
		t.Errorf("requests endpoint does not redact: %s", r.Body)
	}
	// Admin requests are not captured as DPS traffic.
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests captured, want 1", n)
	}
}

func TestServerLimits(t *testing.T) {
	s := NewTestServer(t, Options{ReadHeaderTimeout: 3 * time.Second})
	if s.srv.ReadHeaderTimeout != 3*time.Second || s.srv.ReadTimeout != 30*time.Second ||
		s.srv.WriteTimeout != 30*time.Second || s.srv.IdleTimeout != 120*time.Second {
		t.Errorf("timeouts %v %v %v %v", s.srv.ReadHeaderTimeout, s.srv.ReadTimeout, s.srv.WriteTimeout, s.srv.IdleTimeout)
	}
	// Headers over 32 KiB are refused by net/http before the handler.
	c := dialRaw(t, s)
	r := c.do(rawRequest(s.Host(), "GET", "/_mock/diagnoses", [][2]string{{"X-Big", strings.Repeat("a", 40<<10)}}, ""))
	if r.Status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", r.Status)
	}
}
