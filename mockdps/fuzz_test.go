package mockdps

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// FuzzParseAuthorization feeds arbitrary Authorization values and
// registration ids through token parsing, verification and diagnosis.
// Seeds: testdata/fuzz/FuzzParseAuthorization.
func FuzzParseAuthorization(f *testing.F) {
	exp := testNow.Add(time.Hour).Unix()
	for _, p := range []reference.SASParams{
		{IDScope: DemoIDScope, RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey, Expiry: exp, KeyName: "registration"},
		{Dialect: reference.DialectAzureSDKForC, IDScope: DemoIDScope, RegistrationID: "fz-dev", Key: DemoGroupPrimaryKey, Expiry: exp},
		{Dialect: reference.DialectAzureIoTSDKC, IDScope: DemoIDScope, RegistrationID: "fz-dev", Key: textKey(DemoGroupPrimaryKey), Expiry: 3600, KeyName: "registration"},
	} {
		s, err := reference.NewSAS(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.Token, p.RegistrationID)
	}
	f.Add("SharedAccessSignature sr=0ne00DEMO01/registrations%xx-8c4b&sig=XXX=&skn=registration&se=1651482003", "xx-8c4b")
	f.Add("SharedAccessSignature ", "d")
	f.Add("sr=&sig=&se=", "d")
	x, err := indexEnrollments(DemoEnrollments())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authz, regID string) {
		if checkRegistrationID(regID) != nil {
			regID = DemoDevice1
		}
		who, d := x.authenticate(authInput{HasAuth: true, Authorization: authz, IDScope: DemoIDScope, RegistrationID: regID,
			Now: testNow, MaxLifetime: DefaultMaxTokenLifetime})
		if d == nil {
			if who.indiv == nil && who.group == nil {
				t.Fatalf("accepted without an enrollment")
			}
			// Whatever was accepted verifies with the enrollment's key
			// by the reference's rule too (HMAC over sr as sent).
			tok, err := reference.ParseToken(authz)
			if err != nil {
				t.Fatalf("accepted a token the reference cannot parse: %v", err)
			}
			key := ""
			if who.indiv != nil {
				key = who.indiv.e.PrimaryKey
				if !tok.Verify(key) && who.indiv.e.SecondaryKey != "" {
					key = who.indiv.e.SecondaryKey
				}
			} else {
				key, _ = reference.DeriveDeviceKey(who.group.g.PrimaryKey, regID)
				if !tok.Verify(key) && who.group.g.SecondaryKey != "" {
					key, _ = reference.DeriveDeviceKey(who.group.g.SecondaryKey, regID)
				}
			}
			if !tok.Verify(key) {
				t.Fatalf("accepted a token that does not verify: %q", authz)
			}
			return
		}
		if d.Cause == "" || d.Message == "" {
			t.Fatalf("empty diagnosis %+v", d)
		}
		if tok, err := reference.ParseToken(authz); err == nil && len(tok.Sig) > 8 && d.Cause != CauseMalformedToken {
			for _, s := range []string{d.Message, d.Expected, d.Received} {
				if strings.Contains(s, tok.Sig) {
					t.Fatalf("diagnosis leaks the signature: %+v", d)
				}
			}
		}
	})
}

// FuzzHandler sends arbitrary method, target, headers and body through the
// handler: it must never panic nor answer 5xx. Seeds: testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	tok, err := reference.NewSAS(reference.SASParams{IDScope: DemoIDScope, RegistrationID: DemoDevice1, Key: DemoDevice1PrimaryKey,
		Expiry: testNow.Add(time.Hour).Unix(), KeyName: "registration"})
	if err != nil {
		f.Fatal(err)
	}
	reg := "/" + DemoIDScope + "/registrations/" + DemoDevice1
	f.Add("PUT", reg+"/register?api-version=2021-06-01", "Content-Type: application/json\nAuthorization: "+tok.Token, []byte(`{"registrationId":"demo-device-1"}`))
	f.Add("GET", reg+"/operations/5.x.y?api-version=2019-03-31", "Authorization: "+tok.Token, []byte(nil))
	f.Add("POST", reg+"?api-version=2021-10-01", "Content-Type: application/json; charset=utf-8\nAuthorization: "+tok.Token, []byte(`{"registrationId":"DEMO-DEVICE-1","payload":{"a":[1,2]}}`))
	f.Add("GET", "/_mock/diagnoses", "", []byte(nil))
	f.Add("DELETE", "//registrations//register", "Authorization: SharedAccessSignature", []byte("{"))
	s := NewTestServer(f, Options{Now: func() time.Time { return testNow }, MaxRequests: 50})
	f.Fuzz(func(t *testing.T, method, target, headers string, body []byte) {
		if method == "" || strings.ContainsAny(method, " \r\n\t") {
			method = "GET"
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/" + target}
		}
		r := &http.Request{Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "127.0.0.1", Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		for _, line := range strings.Split(headers, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k != "" {
				r.Header.Add(k, strings.TrimSpace(v))
			}
		}
		r = r.WithContext(t.Context())
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, w.Code, w.Body.String())
		}
	})
}

// FuzzRequestFraming feeds arbitrary bytes to the capture's request framing,
// parsing and redaction: no panic, and a length is -1 or covers at least
// the header block.
func FuzzRequestFraming(f *testing.F) {
	f.Add([]byte("PUT /x HTTP/1.1\r\nContent-Length: 2\r\nAuthorization: SharedAccessSignature sr=a&sig=secretsecret&se=1\r\n\r\n{}"))
	f.Add([]byte("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: 1\r\n\r\n"))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\nHost: x\n\n"))
	f.Add([]byte("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		n := requestLength(raw)
		if n < -1 {
			t.Fatalf("requestLength = %d", n)
		}
		if n >= 0 {
			if end, _ := headerEnd(raw); end < 0 || n < end {
				t.Fatalf("length %d shorter than the header block (%d)", n, end)
			}
		}
		_, _, _, _, _ = parseRaw(raw)
		red := redactRaw(raw)
		// A signature in an Authorization header line of the header block
		// never survives redaction.
		const authLine = "\nAuthorization: SharedAccessSignature sr=a&sig=secretsecret&"
		if i := bytes.Index(raw, []byte(authLine)); i >= 0 {
			if end, _ := headerEnd(raw); (end < 0 || i+1 < end) && bytes.Contains(red, []byte("sig=secretsecret")) {
				t.Fatalf("not redacted: %q", red)
			}
		}
		c := &recConn{buf: append([]byte(nil), raw...)}
		_ = c.take()
	})
}
