package reference

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func sampleParams() RequestParams {
	return RequestParams{IDScope: "0ne00000A0A", RegistrationID: "dev-1", OperationID: "4.d0a6.e717",
		Token:   "SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=abc%3D&se=1700000000&skn=registration",
		Payload: json.RawMessage(`{"a":[1,2]}`)}
}

// TestCanonicalOfWireIsWire: the wire form is already canonical.
func TestCanonicalOfWireIsWire(t *testing.T) {
	p := sampleParams()
	for name, f := range map[string]func(RequestParams) ([]byte, error){
		"register": RegisterRequestBytes, "operation": OperationStatusRequestBytes, "status": RegistrationStatusRequestBytes,
	} {
		wire, err := f(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseRequest(wire)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := FirstDivergence(wire, c.Bytes()); d != nil {
			t.Errorf("%s: canonical form differs from wire form:\n%s", name, d.View())
		}
	}
}

// TestCanonicalIgnoresOrderAndExtras: a request written by net/http (other
// header order, extra headers) has the same canonical form as the wire form.
func TestCanonicalIgnoresOrderAndExtras(t *testing.T) {
	p := sampleParams()
	req, err := RegisterRequest(p)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Extra", "1")
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	wire, _ := RegisterRequestBytes(p)
	if bytes.Equal(buf.Bytes(), wire) {
		t.Fatal("test premise: net/http output should differ from the wire form")
	}
	a, err := ParseRequest(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseRequest(wire)
	if d := FirstDivergence(b.Bytes(), a.Bytes()); d != nil {
		t.Errorf("canonical forms differ:\n%s", d.View())
	}
	// Header names are case-insensitive, values exact.
	lower := bytes.Replace(wire, []byte("Authorization:"), []byte("authorization:   "), 1)
	c, err := ParseRequest(lower)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Bytes(), b.Bytes()) {
		t.Errorf("header name case or spacing changed the canonical form:\n%s", FirstDivergence(b.Bytes(), c.Bytes()).View())
	}
}

func TestCanonicalSeesDifferences(t *testing.T) {
	p := sampleParams()
	wire, _ := RegisterRequestBytes(p)
	base, _ := ParseRequest(wire)
	tests := []struct {
		name     string
		old, new string
	}{
		{"method", "PUT ", "POST "},
		{"query", "api-version=2021-06-01", "api-version=2019-03-31"},
		{"content type", "application/json\r\n", "application/json; charset=utf-8\r\n"},
		{"token hex case", "%2Fregistrations%2F", "%2fregistrations%2f"},
		{"body", `"registrationId":"dev-1"`, `"registrationId":"dev-2"`},
	}
	for _, tt := range tests {
		m := bytes.Replace(wire, []byte(tt.old), []byte(tt.new), 1)
		if bytes.Equal(m, wire) {
			t.Fatalf("%s: replacement did nothing", tt.name)
		}
		c, err := ParseRequest(m)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if FirstDivergence(base.Bytes(), c.Bytes()) == nil {
			t.Errorf("%s: no divergence", tt.name)
		}
	}
}

func TestParseRequestErrors(t *testing.T) {
	for _, raw := range []string{
		"PUT / HTTP/1.1\r\nHost: x\r\n",
		"PUT /\r\n\r\n",
		"PUT / HTTP/1.1\r\nbad header\r\n\r\n",
		"PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
	} {
		if _, err := ParseRequest([]byte(raw)); err == nil {
			t.Errorf("ParseRequest(%q): no error", raw)
		}
	}
	c, err := ParseRequest([]byte("GET /a?b=c HTTP/1.1\nHost: h\n\n"))
	if err != nil || c.Path != "/a" || c.Query != "b=c" {
		t.Errorf("LF line ends: %+v, %v", c, err)
	}
}

// TestCanonicalFromHTTP: a request sent by net/http over TLS and seen by a
// server has the same canonical form as the wire form, on both sides.
func TestCanonicalFromHTTP(t *testing.T) {
	p := sampleParams()
	var seen []byte
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := CanonicalFromHTTP(r)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		seen = c.Bytes()
	}))
	defer srv.Close()
	p.Endpoint = strings.TrimPrefix(srv.URL, "https://")
	for name, pair := range map[string]struct {
		req  func(RequestParams) (*http.Request, error)
		wire func(RequestParams) ([]byte, error)
	}{
		"register":  {RegisterRequest, RegisterRequestBytes},
		"operation": {OperationStatusRequest, OperationStatusRequestBytes},
		"status":    {RegistrationStatusRequest, RegistrationStatusRequestBytes},
	} {
		req, err := pair.req(p)
		if err != nil {
			t.Fatal(err)
		}
		client := srv.Client()
		client.Transport.(*http.Transport).DisableCompression = true
		sent, err := CanonicalFromHTTP(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		wire, _ := pair.wire(p)
		if d := FirstDivergence(wire, seen); d != nil {
			t.Errorf("%s: server-side canonical form differs from the wire form:\n%s", name, d.View())
		}
		if d := FirstDivergence(wire, sent.Bytes()); d != nil {
			t.Errorf("%s: client-side canonical form differs from the wire form:\n%s", name, d.View())
		}
	}
}
