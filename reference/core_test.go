package reference

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestDialectEncode(t *testing.T) {
	tests := []struct {
		d        Dialect
		in, want string
	}{
		{DialectDefault, "0ne00000A0A/registrations/my-device", "0ne00000A0A%2Fregistrations%2Fmy-device"},
		{DialectDefault, "a+b/c=~!()*", "a%2Bb%2Fc%3D~%21%28%29%2A"},
		{DialectAzureSDKForC, "a+b/c=~!()*", "a%2Bb%2Fc%3D~%21%28%29%2A"},
		{DialectAzureIoTSDKC, "a+b/c=~!()*", "a%2bb%2fc%3d%7e!()*"},
		{DialectAzureIoTSDKC, "x:y_z.w-v", "x%3ay_z.w-v"},
		{DialectDefault, "x:y_z.w-v", "x%3Ay_z.w-v"},
		{DialectDefault, "\xe9", "%E9"},
		{DialectAzureIoTSDKC, "\xe9\xa0", "%c3%a9%c2%a0"}, // Latin-1 taken to UTF-8, as urlencode.c does
		{"", "a/b", "a%2Fb"},
	}
	for _, tt := range tests {
		if got := tt.d.Encode(tt.in); got != tt.want {
			t.Errorf("%s.Encode(%q) = %q, want %q", tt.d, tt.in, got, tt.want)
		}
	}
}

func TestDialectResource(t *testing.T) {
	tests := []struct {
		d    Dialect
		want string
	}{
		{DialectDefault, "0ne00000A0A%2Fregistrations%2Fdev.1%3Ax"},
		{DialectAzureSDKForC, "0ne00000A0A%2fregistrations%2fdev.1%3Ax"},
		{DialectAzureIoTSDKC, "0ne00000A0A%2fregistrations%2fdev.1%3ax"},
	}
	for _, tt := range tests {
		if got := tt.d.Resource("0ne00000A0A", "dev.1:x"); got != tt.want {
			t.Errorf("%s.Resource = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseDialect(t *testing.T) {
	for _, d := range Dialects() {
		got, err := ParseDialect(string(d))
		if err != nil || got != d {
			t.Errorf("ParseDialect(%q) = %q, %v", d, got, err)
		}
	}
	if d, err := ParseDialect(""); err != nil || d != DialectDefault {
		t.Errorf("ParseDialect(\"\") = %q, %v", d, err)
	}
	if _, err := ParseDialect("python"); err == nil || !strings.Contains(err.Error(), "azure-iot-sdk-c") {
		t.Errorf("ParseDialect(python) error = %v, want a list of dialects", err)
	}
	if DialectAzureSDKForC.DefaultKeyName() != "" || DialectDefault.DefaultKeyName() != "registration" ||
		DialectAzureIoTSDKC.DefaultKeyName() != "registration" {
		t.Error("DefaultKeyName does not follow the dialects' sources")
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"", "empty"},
		{"abc$def=", `character '$' at position 4`},
		{"YWJj ZGVm", `character ' ' at position 5`},
		{"YWJjZA", "padding is missing"},
		{"YW-_", "URL-safe"},
		{"YWJjZ", "not valid base64"},
	}
	for _, tt := range tests {
		_, err := DecodeKey(tt.key)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeKey(%q) error = %v, want it to mention %q", tt.key, err, tt.want)
		}
	}
	if b, err := DecodeKey("YWJj"); err != nil || string(b) != "abc" {
		t.Errorf("DecodeKey(YWJj) = %q, %v", b, err)
	}
}

func TestValidateRegistrationID(t *testing.T) {
	tests := []struct {
		id   string
		want string // "" = valid
	}{
		{"my-device", ""},
		{"Sn.007_a:b-", ""},
		{strings.Repeat("a", 128), ""},
		{strings.Repeat("a", 129), "129 characters"},
		{"", "empty"},
		{"my device", `' ' at position 3`},
		{"dev/1", `'/' at position 4`},
		{"dévice", `'é' at position 2`},
		{"device.", "last character '.'"},
		{"device:", "last character ':'"},
		{"dev\x00", "byte 0x00 at position 4"},
	}
	for _, tt := range tests {
		err := ValidateRegistrationID(tt.id)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateRegistrationID(%q) = %v, want nil", tt.id, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateRegistrationID(%q) = %v, want it to mention %q", tt.id, err, tt.want)
		}
	}
}

func TestDeriveDeviceKeyErrors(t *testing.T) {
	if _, err := DeriveDeviceKey("not base64!", "dev"); err == nil || !strings.Contains(err.Error(), "group key") {
		t.Errorf("bad group key: err = %v", err)
	}
	if _, err := DeriveDeviceKey("YWJj", "bad id"); err == nil || !strings.Contains(err.Error(), "registration id") {
		t.Errorf("bad registration id: err = %v", err)
	}
}

func TestNewSASErrors(t *testing.T) {
	good := SASParams{IDScope: "0ne00000A0A", RegistrationID: "dev", Key: "YWJj", Expiry: 1}
	tests := []struct {
		name string
		mod  func(*SASParams)
		want string
	}{
		{"bad key", func(p *SASParams) { p.Key = "%%" }, "base64"},
		{"no key", func(p *SASParams) { p.Key = "" }, "empty"},
		{"bad id", func(p *SASParams) { p.RegistrationID = "a b" }, "registration id"},
		{"no scope", func(p *SASParams) { p.IDScope = "" }, "id scope"},
		{"scope with slash", func(p *SASParams) { p.IDScope = "a/b" }, "id scope"},
		{"both resource and scope", func(p *SASParams) { p.Resource = "x" }, "not both"},
		{"zero expiry", func(p *SASParams) { p.Expiry = 0 }, "expiry"},
		{"unknown dialect", func(p *SASParams) { p.Dialect = "x" }, "dialect"},
	}
	for _, tt := range tests {
		p := good
		tt.mod(&p)
		if _, err := NewSAS(p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := NewSAS(good); err != nil {
		t.Errorf("good params: %v", err)
	}
}

// TestNewSASDialects checks each dialect's token against the pieces computed
// independently: the string to sign from the dialect's resource, the
// signature with Sign, the token from FormatToken.
func TestNewSASDialects(t *testing.T) {
	const key = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
	for _, d := range Dialects() {
		s, err := NewSAS(SASParams{Dialect: d, IDScope: "0ne00000A0A", RegistrationID: "dev-1", Key: key,
			Expiry: 1700000000, KeyName: d.DefaultKeyName()})
		if err != nil {
			t.Fatal(err)
		}
		wantSTS := d.Resource("0ne00000A0A", "dev-1") + "\n1700000000"
		if s.StringToSign != wantSTS {
			t.Errorf("%s: string to sign %q, want %q", d, s.StringToSign, wantSTS)
		}
		sig, _ := Sign(key, wantSTS)
		if s.Signature != sig {
			t.Errorf("%s: signature %s, want %s", d, s.Signature, sig)
		}
		tok, err := ParseToken(s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if !tok.Verify(key) {
			t.Errorf("%s: own token does not verify", d)
		}
		if got := MatchDialects(tok); !slices.Equal(got, []Dialect{d}) {
			t.Errorf("%s: MatchDialects = %v, want only %s (token %s)", d, got, d, s.Token)
		}
		if d.DefaultKeyName() == "" && strings.Contains(s.Token, "skn=") {
			t.Errorf("%s: token has skn: %s", d, s.Token)
		}
	}
}

func TestParseToken(t *testing.T) {
	tests := []struct {
		in     string
		fields []string
		want   string // error substring, "" = ok
	}{
		{"SharedAccessSignature sr=a&sig=b&se=1&skn=registration", []string{"sr", "sig", "se", "skn"}, ""},
		{"sig=b%3D&se=1&skn=registration&sr=a", []string{"sig", "se", "skn", "sr"}, ""},
		{"SharedAccessSignature sr=a&sig=b=&se=1", []string{"sr", "sig", "se"}, ""},
		{"SharedAccessSignature sr=a&sig=b", nil, `"se" is missing`},
		{"SharedAccessSignature sr=a&sig=b&se=x", nil, "decimal"},
		{"SharedAccessSignature sr=a&sig=b&se=-1", nil, "decimal"},
		{"SharedAccessSignature sr=a&sig=b&se=1&sr=c", nil, "twice"},
		{"SharedAccessSignature sr=a&sig=b&se=1&foo=2", nil, "unknown field"},
		{"SharedAccessSignature sr=a&sigb&se=1", nil, "no '='"},
		{"Bearer sr=a&sig=b&se=1", nil, "unexpected"},
		{"SharedAccessSignature ", nil, "no fields"},
		{"", nil, "no fields"},
	}
	for _, tt := range tests {
		tok, err := ParseToken(tt.in)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseToken(%q) error = %v, want %q", tt.in, err, tt.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseToken(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(tok.Fields, tt.fields) || tok.Expiry != 1 {
			t.Errorf("ParseToken(%q) = %+v", tt.in, tok)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	const key = "NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg="
	s, err := NewSAS(SASParams{IDScope: "0ne00000A0A", RegistrationID: "dev", Key: key, Expiry: 1700000000, KeyName: "registration"})
	if err != nil {
		t.Fatal(err)
	}
	mutations := map[string]string{
		"expiry changed":   strings.Replace(s.Token, "se=1700000000", "se=1700000001", 1),
		"sr case changed":  strings.Replace(s.Token, "%2Fregistrations%2F", "%2fregistrations%2f", 1),
		"sig byte changed": strings.Replace(s.Token, "sig=", "sig=A", 1),
	}
	for name, m := range mutations {
		tok, err := ParseToken(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tok.Verify(key) {
			t.Errorf("%s: Verify = true", name)
		}
	}
	tok, _ := ParseToken(s.Token)
	if tok.Verify("YWJj") || tok.Verify("not base64") {
		t.Error("verifies with a wrong or invalid key")
	}
}

func TestRequestBytes(t *testing.T) {
	const tok = "SharedAccessSignature sr=x&sig=y&se=1&skn=registration"
	p := RequestParams{IDScope: "0ne00000A0A", RegistrationID: "dev-1", Token: tok}
	got, err := RegisterRequestBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "PUT /0ne00000A0A/registrations/dev-1/register?api-version=2021-06-01 HTTP/1.1\r\n" +
		"Host: global.azure-devices-provisioning.net\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: 26\r\n" +
		"Authorization: " + tok + "\r\n" +
		"\r\n" +
		`{"registrationId":"dev-1"}`
	if string(got) != want {
		t.Errorf("register bytes:\n%q\nwant\n%q", got, want)
	}

	p.Endpoint, p.APIVersion, p.Payload = "127.0.0.1:8443", "2019-03-31", json.RawMessage(`{"modelId":"dtmi:a;1"}`)
	got, err = RegistrationStatusRequestBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"registrationId":"dev-1","payload":{"modelId":"dtmi:a;1"}}`
	want = "POST /0ne00000A0A/registrations/dev-1?api-version=2019-03-31 HTTP/1.1\r\n" +
		"Host: 127.0.0.1:8443\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Authorization: " + tok + "\r\n\r\n" + body
	if string(got) != want {
		t.Errorf("status bytes:\n%q\nwant\n%q", got, want)
	}

	p.Endpoint, p.OperationID = "dps.example.net:443", "5.316aac5bdc130deb.b1e02da8-c3a0-4ff2-a121-7ea7a6b7f550"
	got, err = OperationStatusRequestBytes(p)
	if err != nil {
		t.Fatal(err)
	}
	want = "GET /0ne00000A0A/registrations/dev-1/operations/" + p.OperationID + "?api-version=2019-03-31 HTTP/1.1\r\n" +
		"Host: dps.example.net\r\nAuthorization: " + tok + "\r\n\r\n"
	if string(got) != want {
		t.Errorf("operation bytes:\n%q\nwant\n%q", got, want)
	}
}

func TestRequestErrors(t *testing.T) {
	good := RequestParams{IDScope: "0ne00000A0A", RegistrationID: "dev-1", Token: "t", OperationID: "op"}
	tests := []struct {
		name string
		mod  func(*RequestParams)
		want string
	}{
		{"bad id", func(p *RequestParams) { p.RegistrationID = "a/b" }, "registration id"},
		{"no scope", func(p *RequestParams) { p.IDScope = "" }, "id scope"},
		{"no token", func(p *RequestParams) { p.Token = "" }, "token"},
		{"token with newline", func(p *RequestParams) { p.Token = "a\r\nX-Evil: 1" }, "line break"},
		{"token with trailing space", func(p *RequestParams) { p.Token = "a " }, "whitespace"},
		{"bad payload", func(p *RequestParams) { p.Payload = json.RawMessage("{") }, "payload"},
		{"bad endpoint", func(p *RequestParams) { p.Endpoint = "https://x/" }, "endpoint"},
		{"bad port", func(p *RequestParams) { p.Endpoint = "x:99999" }, "port"},
		{"bad api version", func(p *RequestParams) { p.APIVersion = "a&b" }, "api version"},
	}
	for _, tt := range tests {
		p := good
		tt.mod(&p)
		if _, err := RegisterRequestBytes(p); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	p := good
	p.OperationID = ""
	if _, err := OperationStatusRequestBytes(p); err == nil {
		t.Error("operation status without an operation id: no error")
	}
	p.OperationID = "a/b"
	if _, err := OperationStatusRequest(p); err == nil {
		t.Error("operation id with '/': no error")
	}
}

// TestHTTPRequestMatchesWire writes each *http.Request the way net/http does
// and checks it carries the same method, target, headers and body as the wire
// form, and no User-Agent.
func TestHTTPRequestMatchesWire(t *testing.T) {
	p := RequestParams{Endpoint: "127.0.0.1:8443", IDScope: "0ne00000A0A", RegistrationID: "dev-1",
		Token: "SharedAccessSignature sr=x&sig=y&se=1", OperationID: "op.1", Payload: json.RawMessage(`{"a":1}`)}
	type pair struct {
		name  string
		req   func(RequestParams) (*http.Request, error)
		bytes func(RequestParams) ([]byte, error)
	}
	for _, pr := range []pair{
		{"register", RegisterRequest, RegisterRequestBytes},
		{"operation", OperationStatusRequest, OperationStatusRequestBytes},
		{"status", RegistrationStatusRequest, RegistrationStatusRequestBytes},
	} {
		req, err := pr.req(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := req.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "User-Agent") {
			t.Errorf("%s: net/http wrote a User-Agent:\n%s", pr.name, buf.String())
		}
		wire, err := pr.bytes(p)
		if err != nil {
			t.Fatal(err)
		}
		a, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(wire)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatal(err)
		}
		da, _ := httputil.DumpRequest(a, true)
		db, _ := httputil.DumpRequest(b, true)
		if !bytes.Equal(da, db) {
			t.Errorf("%s: *http.Request differs from wire form:\n%s\nvs\n%s", pr.name, db, da)
		}
		ab, _ := io.ReadAll(a.Body)
		if len(ab) != int(a.ContentLength) && a.ContentLength >= 0 {
			t.Errorf("%s: Content-Length %d, body %d bytes", pr.name, a.ContentLength, len(ab))
		}
	}
}
