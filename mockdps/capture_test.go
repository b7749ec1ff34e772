package mockdps

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

func TestCaptureRawBytes(t *testing.T) {
	s := NewTestServer(t, Options{Now: newClock().Now})
	st := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey})
	uri := "/" + DemoIDScope + "/registrations/" + DemoDevice1 + "/register?api-version=2021-06-01"
	body := `{ "registrationId":"` + DemoDevice1 + `" }`
	// Header order and spelling as a legacy C SDK sends them, with a
	// duplicate header; then a chunked body; then two pipelined requests.
	first := []byte("PUT " + uri + " HTTP/1.1\r\nHost: " + s.Host() + "\r\nUserAgent: prov_device_client/1.0\r\nAccept: application/json\r\n" +
		"Connection: keep-alive\r\ncontent-type: application/json; charset=utf-8\r\nX-Dup: 1\r\nX-Dup: 2\r\nAuthorization: " + st.Token +
		"\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
	chunked := []byte("PUT " + uri + " HTTP/1.1\r\nHost: " + s.Host() + "\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nAuthorization: " + st.Token +
		"\r\n\r\n5\r\n" + body[:5] + "\r\n" + itoa16(len(body)-5) + "\r\n" + body[5:] + "\r\n0\r\n\r\n")
	third := registerBytes(t, s, DemoDevice1, st.Token)
	fourth := statusBytes(t, s, DemoDevice1, st.Token)

	c := dialRaw(t, s)
	for _, req := range [][]byte{first, chunked} {
		if r := c.do(req); r.Status != 202 {
			t.Fatalf("status %d %s (%v)", r.Status, r.Body, s.Diagnoses())
		}
	}
	c.send(append(append([]byte{}, third...), fourth...))
	if r := c.read(); r.Status != 202 {
		t.Fatalf("pipelined 1: %d", r.Status)
	}
	if r := c.read(); r.Status != 200 {
		t.Fatalf("pipelined 2: %d %s", r.Status, r.Body)
	}

	reqs := s.Requests()
	if len(reqs) != 4 {
		t.Fatalf("captured %d requests, want 4", len(reqs))
	}
	for i, want := range [][]byte{first, chunked, third, fourth} {
		if !bytes.Equal(reqs[i].Raw, want) {
			t.Errorf("request %d captured as\n%q\nwant\n%q", i, reqs[i].Raw, want)
		}
		if reqs[i].TLSVersion != "TLS1.3" || reqs[i].SNI != "localhost" || reqs[i].RemoteAddr == "" || reqs[i].Time.IsZero() {
			t.Errorf("request %d: tls %q sni %q remote %q", i, reqs[i].TLSVersion, reqs[i].SNI, reqs[i].RemoteAddr)
		}
	}
	wantHdr := [][2]string{{"Host", s.Host()}, {"UserAgent", "prov_device_client/1.0"}, {"Accept", "application/json"},
		{"Connection", "keep-alive"}, {"content-type", "application/json; charset=utf-8"}, {"X-Dup", "1"}, {"X-Dup", "2"},
		{"Authorization", st.Token}, {"Content-Length", itoa(len(body))}}
	if got := reqs[0].Header; !slices.Equal(got, wantHdr) {
		t.Errorf("headers\n%q\nwant\n%q", got, wantHdr)
	}
	if reqs[0].Method != "PUT" || reqs[0].RequestURI != uri || reqs[0].Proto != "HTTP/1.1" || string(reqs[0].Body) != body {
		t.Errorf("request line/body: %q %q %q %q", reqs[0].Method, reqs[0].RequestURI, reqs[0].Proto, reqs[0].Body)
	}
	if string(reqs[1].Body) != body {
		t.Errorf("chunked body decoded as %q", reqs[1].Body)
	}
	// Redacted copies hide the signature, the in-memory capture keeps it.
	red := reqs[0].Redacted()
	enc := sigOf(st.Token)
	if bytes.Contains(red.Raw, []byte(enc)) || strings.Contains(red.Header[7][1], enc) || !bytes.Contains(red.Raw, []byte(enc[:6]+"…(redacted)")) {
		t.Errorf("redacted raw %q", red.Raw)
	}
	if !bytes.Contains(reqs[0].Raw, []byte(enc)) {
		t.Errorf("in-memory capture lost the signature")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func itoa16(n int) string { return strconv.FormatInt(int64(n), 16) }

func TestCaptureFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.jsonl")
	s := NewTestServer(t, Options{Now: newClock().Now, CapturePath: path})
	good := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey})
	bad := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoGroupPrimaryKey})
	c := dialRaw(t, s)
	c.do(registerBytes(t, s, DemoDevice1, good.Token))
	c.do(registerBytes(t, s, DemoDevice1, bad.Token))
	// Flushed per request: readable while the server runs.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("capture line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d capture lines, want 2", len(lines))
	}
	for _, sig := range []string{sigOf(good.Token), sigOf(bad.Token), good.Signature, bad.Signature} {
		if bytes.Contains(data, []byte(sig[:12])) {
			t.Errorf("capture file holds a signature")
		}
	}
	if lines[0]["status"] != float64(202) || lines[1]["status"] != float64(401) {
		t.Errorf("statuses %v %v", lines[0]["status"], lines[1]["status"])
	}
	d, _ := lines[1]["diagnosis"].(map[string]any)
	if d["cause"] != string(CauseWrongKey) && d["cause"] != string(CauseGroupKeyUsed) {
		t.Errorf("capture diagnosis %v", d)
	}
	raw, _ := lines[0]["raw"].(string)
	if !strings.HasPrefix(raw, "PUT /"+DemoIDScope+"/registrations/") || lines[0]["tlsVersion"] != "TLS1.3" {
		t.Errorf("capture line %v", lines[0])
	}
}

func TestStartTLS(t *testing.T) {
	s := NewTestServer(t, Options{SANs: []string{"dps.bench.lan", "192.168.7.2", "fd00::7"}})
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Errorf("URL %s", s.URL())
	}
	blk, _ := pem.Decode(s.CAPEM())
	if blk == nil {
		t.Fatal("CA PEM does not decode")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !ca.IsCA {
		t.Fatalf("CA: %v", err)
	}
	leaf := s.certs.server.Leaf
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("server cert not signed by the CA: %v", err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v", leaf.PublicKeyAlgorithm)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "dps.bench.lan", "192.168.7.2", "fd00::7"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("SAN %s: %v", name, err)
		}
	}
	// The Go client trusting only the CA reaches it, by IP and by name.
	for _, u := range []string{s.URL(), strings.Replace(s.URL(), "127.0.0.1", "localhost", 1)} {
		resp, err := s.Client().Get(u + "/_mock/diagnoses")
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", u, resp.StatusCode)
		}
	}
	// The system roots do not trust it.
	if _, err := http.Get(s.URL() + "/_mock/diagnoses"); err == nil {
		t.Errorf("default client trusted the mock CA")
	}
}

func TestStartPlain(t *testing.T) {
	s := NewTestServer(t, Options{Plain: true, Now: newClock().Now})
	if !strings.HasPrefix(s.URL(), "http://") || s.CAPEM() != nil || s.CertPool() != nil {
		t.Fatalf("plain server: %s", s.URL())
	}
	tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
	r := dialRaw(t, s).do(registerBytes(t, s, DemoDevice1, tok))
	if r.Status != 202 || !strings.HasPrefix(r.Header.Get("Location"), "http://") {
		t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
	}
	if reqs := s.Requests(); reqs[0].TLSVersion != "" {
		t.Errorf("TLS version over plain HTTP: %q", reqs[0].TLSVersion)
	}
}

func TestStartErrors(t *testing.T) {
	bad := DemoEnrollments()
	bad.Groups[0].PrimaryKey = "not base64!"
	if _, err := Start(Options{Enrollments: bad}); err == nil || !strings.Contains(err.Error(), `group "demo-group": primary key is not base64`) {
		t.Errorf("bad enrollments: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Start(Options{Listen: ln.Addr().String()}); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("busy port: %v", err)
	}
}

func TestRequestLength(t *testing.T) {
	const complete = 0
	tests := []struct {
		name      string
		req, rest string
		want      int // complete = len(req)
	}{
		{"no body", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "", complete},
		{"content-length", "PUT / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc", "", complete},
		{"body not all there", "PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", "", len("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n") + 10},
		{"next request follows", "GET / HTTP/1.1\r\n\r\n", "GET /x HTTP/1.1\r\n\r\n", complete},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", "", complete},
		{"incomplete header", "GET / HTTP/1.1\r\nHost: x\r\n", "", -1},
		{"bad content-length", "PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "", -1},
		{"chunked", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "", complete},
		{"chunked with trailer and extension", "PUT / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n", "NEXT", complete},
		{"chunked incomplete", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == complete {
				want = len(tc.req)
			}
			if got := requestLength([]byte(tc.req + tc.rest)); got != want {
				t.Errorf("requestLength = %d, want %d", got, want)
			}
		})
	}
}

// TestCaptureResponseFields checks that each captured request records the
// Retry-After and operationId of the answer it got, in memory and in the
// capture file.
func TestCaptureResponseFields(t *testing.T) {
	const none = -1
	type step struct {
		name    string
		fault   Fault
		advance time.Duration
		// req builds the request; op is the operationId of the register
		// answer so far.
		req        func(s *Server, op, tok string) []byte
		status     int // 0: the connection is dropped
		retryAfter int // none: no Retry-After
		hasOp      bool
	}
	register := func(s *Server, _, tok string) []byte { return registerBytes(t, s, DemoDevice1, tok) }
	poll := func(s *Server, op, tok string) []byte { return operationBytes(t, s, DemoDevice1, op, tok) }
	tests := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"flow with assign delay", Options{AssignDelay: 5 * time.Second, RetryAfter: 2, ThrottleRetryAfter: 7}, []step{
			{name: "register", req: register, status: 202, retryAfter: 2, hasOp: true},
			{name: "poll assigning", req: poll, status: 202, retryAfter: 2, hasOp: true},
			{name: "poll assigned", advance: 5 * time.Second, req: poll, status: 200, retryAfter: none, hasOp: true},
			{name: "unknown operation", req: func(s *Server, _, tok string) []byte {
				return operationBytes(t, s, DemoDevice1, "5.0123456789abcdef.00000000-0000-0000-0000-000000000000", tok)
			}, status: 404, retryAfter: none},
			{name: "status lookup", req: func(s *Server, _, tok string) []byte { return statusBytes(t, s, DemoDevice1, tok) },
				status: 200, retryAfter: none},
			{name: "5xx fault", fault: Fault{Mode: FaultServerError, Status: 503}, req: register, status: 503, retryAfter: 7},
			{name: "dropped", fault: Fault{Mode: FaultDrop}, req: register, status: 0, retryAfter: none},
		}},
		{"retry immediately", Options{RetryAfter: RetryImmediately}, []step{
			{name: "register", req: register, status: 202, retryAfter: 0, hasOp: true},
		}},
		{"throttled", Options{RateLimit: 1, RateBurst: 1, ThrottleRetryAfter: 9}, []step{
			{name: "register", req: register, status: 202, retryAfter: 3, hasOp: true},
			{name: "throttled", req: register, status: 429, retryAfter: 9},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			opts := tc.opts
			opts.Now = clk.Now
			opts.CapturePath = filepath.Join(t.TempDir(), "capture.jsonl")
			s := NewTestServer(t, opts)
			tok := sas(t, reference.SASParams{RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey}).Token
			op := ""
			var answered []string // operationId of each answer
			for _, st := range tc.steps {
				s.SetFault(st.fault)
				clk.Advance(st.advance)
				c := dialRaw(t, s)
				if st.status == 0 {
					c.send(st.req(s, op, tok))
					if _, err := http.ReadResponse(c.br, nil); err == nil {
						t.Fatalf("%s: got a response", st.name)
					}
					answered = append(answered, "")
					continue
				}
				r := c.do(st.req(s, op, tok))
				if r.Status != st.status {
					t.Fatalf("%s: status %d %s, want %d", st.name, r.Status, r.Body, st.status)
				}
				got, _ := r.JSON["operationId"].(string)
				if st.hasOp != (got != "") {
					t.Fatalf("%s: answer operationId %q", st.name, got)
				}
				if op == "" {
					op = got
				}
				answered = append(answered, got)
			}
			s.SetFault(Fault{})
			reqs := s.Requests()
			if len(reqs) != len(tc.steps) {
				t.Fatalf("captured %d requests, want %d", len(reqs), len(tc.steps))
			}
			data, err := os.ReadFile(opts.CapturePath)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != len(tc.steps) {
				t.Fatalf("%d capture lines, want %d", len(lines), len(tc.steps))
			}
			for i, st := range tc.steps {
				q := reqs[i]
				if q.Status != st.status || q.HasRetryAfter != (st.retryAfter != none) || q.RetryAfter != st.retryAfter {
					t.Errorf("%s: captured status %d Retry-After %v/%d, want %d and %d", st.name, q.Status, q.HasRetryAfter, q.RetryAfter, st.status, st.retryAfter)
				}
				if q.OperationID != answered[i] {
					t.Errorf("%s: captured operationId %q, the answer had %q", st.name, q.OperationID, answered[i])
				}
				if red := q.Redacted(); red.RetryAfter != q.RetryAfter || red.HasRetryAfter != q.HasRetryAfter || red.OperationID != q.OperationID {
					t.Errorf("%s: redacted copy lost the response fields: %+v", st.name, red)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
					t.Fatalf("capture line %q: %v", lines[i], err)
				}
				ra, hasRA := m["retryAfter"]
				if hasRA != q.HasRetryAfter || (hasRA && ra != float64(q.RetryAfter)) {
					t.Errorf("%s: capture line retryAfter %v (present %v), want %d", st.name, ra, hasRA, st.retryAfter)
				}
				if o, _ := m["operationId"].(string); o != answered[i] {
					t.Errorf("%s: capture line operationId %q, want %q", st.name, o, answered[i])
				}
			}
		})
	}
}
