package mockdps

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// testNow is the fixed time of the test clock.
var testNow = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rawConn is one TLS (or plain) connection that sends exact request bytes.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, s *Server) *rawConn {
	t.Helper()
	var c net.Conn
	var err error
	if s.CertPool() == nil {
		c, err = net.Dial("tcp", s.Host())
	} else {
		c, err = tls.Dial("tcp", s.Host(), &tls.Config{RootCAs: s.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
	}
	if err != nil {
		t.Fatalf("dial %s: %v", s.Host(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// response is a read response with its decoded JSON body.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (rc *rawConn) send(req []byte) {
	rc.t.Helper()
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Write(req); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawConn) read() *response {
	rc.t.Helper()
	_ = rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("read body: %v", err)
	}
	out := &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &out.JSON); err != nil {
			rc.t.Fatalf("response body %q is not a JSON object: %v", b, err)
		}
	}
	return out
}

func (rc *rawConn) do(req []byte) *response {
	rc.t.Helper()
	rc.send(req)
	return rc.read()
}

// sas builds a token with the reference implementation.
func sas(t *testing.T, p reference.SASParams) reference.SAS {
	t.Helper()
	if p.Expiry == 0 {
		p.Expiry = testNow.Add(time.Hour).Unix()
	}
	if p.IDScope == "" && p.Resource == "" {
		p.IDScope = DemoIDScope
	}
	if p.KeyName == "" && p.Dialect.DefaultKeyName() != "" {
		p.KeyName = p.Dialect.DefaultKeyName()
	}
	s, err := reference.NewSAS(p)
	if err != nil {
		t.Fatalf("NewSAS: %v", err)
	}
	return s
}

func derive(t *testing.T, groupKey, regID string) string {
	t.Helper()
	k, err := reference.DeriveDeviceKey(groupKey, regID)
	if err != nil {
		t.Fatalf("derive: %v", err)
	}
	return k
}

// requestBytes builds the request for regID at s with build; what names
// the request in the failure message.
func requestBytes(t *testing.T, what string, build func(reference.RequestParams) ([]byte, error), s *Server, regID, opID, token string) []byte {
	t.Helper()
	b, err := build(reference.RequestParams{Endpoint: s.Host(), IDScope: s.IDScope(), RegistrationID: regID, OperationID: opID, Token: token})
	if err != nil {
		t.Fatalf("%s request: %v", what, err)
	}
	return b
}

func registerBytes(t *testing.T, s *Server, regID, token string) []byte {
	t.Helper()
	return requestBytes(t, "register", reference.RegisterRequestBytes, s, regID, "", token)
}

func operationBytes(t *testing.T, s *Server, regID, opID, token string) []byte {
	t.Helper()
	return requestBytes(t, "operation", reference.OperationStatusRequestBytes, s, regID, opID, token)
}

func statusBytes(t *testing.T, s *Server, regID, token string) []byte {
	t.Helper()
	return requestBytes(t, "status", reference.RegistrationStatusRequestBytes, s, regID, "", token)
}

// rawRequest writes a request by hand (for shapes the builders refuse).
func rawRequest(host, method, uri string, headers [][2]string, body string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, uri, host)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if method != http.MethodGet || body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// textKey returns a base64 key whose decoded bytes are the base64 text of
// key: signing with it reproduces "forgot to base64-decode the key".
func textKey(key string) string {
	return base64.StdEncoding.EncodeToString([]byte(key))
}

func lastDiag(t *testing.T, s *Server) Diagnosis {
	t.Helper()
	ds := s.Diagnoses()
	if len(ds) == 0 {
		t.Fatalf("no diagnosis recorded")
	}
	return ds[len(ds)-1]
}
