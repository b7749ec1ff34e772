package cases

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/hiltest/hiltest/reference"
)

const (
	testGroupKey = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
	testRegID    = "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
	testScope    = "0neFEEDC0DE"
)

// token builds a token from parts, the way a (buggy) firmware would.
func token(sr, sig, se, skn string) string {
	s := "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + se
	if skn != "" {
		s += "&skn=" + skn
	}
	return s
}

func TestDiagnoseToken(t *testing.T) {
	dev, err := reference.DeriveDeviceKey(testGroupKey, testRegID)
	if err != nil {
		t.Fatal(err)
	}
	const se = int64(1893456000)
	ses := strconv.FormatInt(se, 10)
	in := tokenInputs{Dialect: reference.DialectDefault, DialectFrom: "the bench declared", IDScope: testScope, RegID: testRegID,
		Key: dev, GroupKey: testGroupKey, Expiry: se, KeyName: "registration"}
	d := reference.DialectDefault
	sr := d.Resource(testScope, testRegID)
	sign := func(key, msg string) string {
		s, err := reference.Sign(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signRaw := func(key []byte, msg string) string { return hmacB64(key, msg) }
	good := token(sr, d.Encode(sign(dev, sr+"\n"+ses)), ses, "registration")
	iot := reference.DialectAzureIoTSDKC
	iotSR := iot.Resource(testScope, testRegID)
	textDerived := signRaw([]byte(testGroupKey), testRegID)
	devBytes, _ := base64.StdEncoding.DecodeString(dev)

	tests := []struct {
		name string
		in   tokenInputs
		got  string
		want string
	}{
		{"correct", in, good, ""},
		{"empty", in, "", "no token"},
		{"truncated", in, good[:90], "truncated token (90 of"},
		{"missing skn", in, strings.TrimSuffix(good, "&skn=registration"), "missing skn"},
		{"group key", in, token(sr, d.Encode(sign(testGroupKey, sr+"\n"+ses)), ses, "registration"),
			"signed with the group key instead of the derived device key"},
		{"derived from base64 text", in, token(sr, d.Encode(sign(textDerived, sr+"\n"+ses)), ses, "registration"),
			"device key derived from the group key's base64 text instead of its decoded bytes"},
		{"device key text", in, token(sr, d.Encode(signRaw([]byte(dev), sr+"\n"+ses)), ses, "registration"),
			"signed with the device key's base64 text"},
		{"truncated key", in, token(sr, d.Encode(signRaw(devBytes[:16], sr+"\n"+ses)), ses, "registration"),
			"signed with a truncated key (first 16 of 32 bytes)"},
		{"sr not encoded", in, token(testScope+"/registrations/"+testRegID, d.Encode(sign(dev, testScope+"/registrations/"+testRegID+"\n"+ses)), ses, "registration"),
			"sr not URL-encoded"},
		{"sig not encoded", in, token(sr, sign(dev, sr+"\n"+ses), ses, "registration"), "signature not URL-encoded"},
		{"other scope", in, token(d.Resource("0neOTHER", testRegID), d.Encode(sign(dev, d.Resource("0neOTHER", testRegID)+"\n"+ses)), ses, "registration"),
			`wrong resource: sr names scope "0neOTHER"`},
		{"reg id case", in, token(d.Resource(testScope, strings.ToUpper(testRegID)), "x", ses, "registration"),
			"registration id case changed"},
		{"unset clock", tokenInputs{Dialect: d, IDScope: testScope, RegID: testRegID, Key: dev, Expiry: 1700003600, FromClock: true, KeyName: "registration"},
			token(sr, d.Encode(sign(dev, sr+"\n3605")), "3605", "registration"), "expiry from an unset clock: se=3605 is 1970-01-01T01:00:05Z"},
		{"milliseconds", in, token(sr, d.Encode(sign(dev, sr+"\n"+ses+"123")), ses+"123", "registration"), "expiry in milliseconds"},
		{"ttl not added", tokenInputs{Dialect: d, IDScope: testScope, RegID: testRegID, Key: dev, Expiry: 1800003600, FromClock: true, TTL: 3600, KeyName: "registration"},
			token(sr, d.Encode(sign(dev, sr+"\n1800000001")), "1800000001", "registration"), "ttl not added"},
		{"ttl as milliseconds", tokenInputs{Dialect: d, IDScope: testScope, RegID: testRegID, Key: dev, Expiry: 1800003600, FromClock: true, TTL: 3600, KeyName: "registration"},
			token(sr, d.Encode(sign(dev, sr+"\n1803600000")), "1803600000", "registration"), "ttl taken as milliseconds"},
		{"lowercased resource", in, token(strings.ToLower(sr), "x", ses, "registration"), "resource lowercased"},
		{"32-bit expiry", tokenInputs{Dialect: d, IDScope: testScope, RegID: testRegID, Key: dev, Expiry: 4294967296 + 7, KeyName: "registration"},
			token(sr, d.Encode(sign(dev, sr+"\n7")), "7", "registration"), "expiry truncated to 32 bits"},
		{"wrong dialect", in, token(iotSR, iot.Encode(sign(dev, iotSR+"\n"+ses)), ses, "registration"),
			"valid azure-iot-sdk-c token, but the bench declared default"},
		{"signed another encoding", in, token(iotSR, d.Encode(sign(dev, sr+"\n"+ses)), ses, "registration"),
			"the string signed (sr=" + sr + ") differs from the sr sent"},
		{"signed unencoded resource", in, token(sr, d.Encode(sign(dev, testScope+"/registrations/"+testRegID+"\n"+ses)), ses, "registration"),
			"signed the unencoded resource"},
		{"unexpected skn", tokenInputs{Dialect: reference.DialectAzureSDKForC, DialectFrom: "x", IDScope: testScope, RegID: testRegID, Key: dev, Expiry: se},
			token(reference.DialectAzureSDKForC.Resource(testScope, testRegID), d.Encode(sign(dev, reference.DialectAzureSDKForC.Resource(testScope, testRegID)+"\n"+ses)), ses, "registration"),
			"unexpected skn=registration"},
		{"wrong skn", in, strings.Replace(good, "skn=registration", "skn=iothubowner", 1), `wrong skn: "iothubowner"`},
		{"prefix", in, strings.TrimPrefix(good, "SharedAccessSignature "), "missing \"SharedAccessSignature \" prefix"},
		{"malformed", in, "SharedAccessSignature sr=a&bogus=1", "malformed token"},
		{"unknown key", in, token(sr, d.Encode(sign("AAECAwQFBgcICQoLDA0ODw==", sr+"\n"+ses)), ses, "registration"),
			"signature does not verify with the device key (cause not identified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diagnoseToken(tt.in, tt.got)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("diagnoseToken = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestDiagnoseDeviceKey(t *testing.T) {
	want, _ := reference.DeriveDeviceKey(testGroupKey, testRegID)
	g, _ := base64.StdEncoding.DecodeString(testGroupKey)
	mac := hmacRaw(g, testRegID)
	tests := []struct {
		name, got, want string
	}{
		{"correct", want, ""},
		{"empty", "", "no device key"},
		{"truncated", want[:20], "truncated device key (20 of 44 characters)"},
		{"group key", testGroupKey, "returned the group key unchanged"},
		{"base64 text", hmacB64([]byte(testGroupKey), testRegID), "derived from the group key's base64 text"},
		{"newline", hmacB64(g, testRegID+"\n"), "trailing newline"},
		{"uppercase id", hmacB64(g, strings.ToUpper(testRegID)), "uppercased registration id"},
		{"no padding", base64.RawStdEncoding.EncodeToString(mac), "lacks its base64 '=' padding"},
		{"url-safe", base64.URLEncoding.EncodeToString(mac), "URL-safe base64"},
		{"hex", hex.EncodeToString(mac), "hex-encoded"},
		{"truncated group key", hmacB64(g[:32], testRegID), "truncated group key (first 32 of 64 bytes)"},
		{"other", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "cause not identified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diagnoseDeviceKey(testGroupKey, testRegID, tt.got)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("diagnoseDeviceKey = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestDiagnoseRequest(t *testing.T) {
	dev, _ := reference.DeriveDeviceKey(testGroupKey, testRegID)
	in := tokenInputs{Dialect: reference.DialectDefault, DialectFrom: "the bench declared", IDScope: testScope, RegID: testRegID,
		Key: dev, GroupKey: testGroupKey, Expiry: 1893456000, KeyName: "registration"}
	sas, err := referenceSAS(in)
	if err != nil {
		t.Fatal(err)
	}
	build := func(p reference.RequestParams) reference.CanonicalRequest {
		if p.IDScope == "" {
			p.IDScope = testScope
		}
		if p.RegistrationID == "" {
			p.RegistrationID = testRegID
		}
		if p.Token == "" {
			p.Token = sas.Token
		}
		if p.Endpoint == "" {
			p.Endpoint = "dps.example:8443"
		}
		raw, err := reference.RegisterRequestBytes(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := reference.ParseRequest(raw)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := build(reference.RequestParams{})
	withBody := func(body string) reference.CanonicalRequest {
		c := build(reference.RequestParams{})
		c.Body = []byte(body)
		for i, h := range c.Headers {
			if h[0] == "Content-Length" {
				c.Headers[i][1] = strconv.Itoa(len(body))
			}
		}
		return c
	}
	noSig := want
	noSig.Headers = append([][2]string(nil), want.Headers...)
	for i, h := range noSig.Headers {
		if h[0] == "Authorization" {
			noSig.Headers[i][1] = strings.Replace(h[1], "&skn=registration", "", 1)
		}
	}
	tests := []struct {
		name string
		got  reference.CanonicalRequest
		want string
	}{
		{"same", want, ""},
		{"api version", build(reference.RequestParams{APIVersion: "2019-03-31"}), "wrong api-version 2019-03-31 (expected 2021-06-01)"},
		{"host", build(reference.RequestParams{Endpoint: "dps.example"}), `Host header "dps.example" instead of "dps.example:8443"`},
		{"token", noSig, "Authorization: missing skn"},
		{"body registration id", withBody(`{"registrationId":"other"}`), `body registrationId "other" does not match`},
		{"body spacing", withBody(`{ "registrationId":"` + testRegID + `" }`), "body formatted differently"},
		{"payload", withBody(`{"registrationId":"` + testRegID + `","payload":{}}`), "unexpected payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diagnoseRequest(want, tt.got, in)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("diagnoseRequest = %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestFlipHexCase(t *testing.T) {
	tests := []struct {
		in    string
		upper bool
		want  string
	}{
		{"a%2fb%3Dc", true, "a%2Fb%3Dc"},
		{"a%2Fb%3dc", false, "a%2fb%3dc"},
		{"abc", true, "abc"},
		{"%", true, "%"},
	}
	for _, tt := range tests {
		if got := flipHexCase(tt.in, tt.upper); got != tt.want {
			t.Errorf("flipHexCase(%q, %v) = %q, want %q", tt.in, tt.upper, got, tt.want)
		}
	}
}

func TestNearAuthorization(t *testing.T) {
	b := []byte("PUT /s/registrations/d/register?api-version=2021-06-01 HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 70\r\nAuthorization: SharedAccessSignature sr=x&sig=y&se=1\r\n\r\n{\"registrationId\":\"device-with-a-long-registration-id-0123456789\"}")
	auth := strings.Index(string(b), "Authorization")
	tests := []struct {
		name   string
		offset int
		want   bool
	}{
		{"request line", 45, false},
		{"in the token", auth + 30, true},
		{"just before the header", auth - 10, true},
		{"body end", len(b) - 1, false},
	}
	for _, tt := range tests {
		if got := nearAuthorization(b, tt.offset); got != tt.want {
			t.Errorf("%s: nearAuthorization(%d) = %v, want %v", tt.name, tt.offset, got, tt.want)
		}
	}
}

// BenchmarkDiagnoseToken measures the worst case: a signature no
// hypothesis explains, so every key and string-to-sign is tried.
func BenchmarkDiagnoseToken(b *testing.B) {
	dev, _ := reference.DeriveDeviceKey(testGroupKey, testRegID)
	in := tokenInputs{Dialect: reference.DialectDefault, DialectFrom: "the bench declared", IDScope: testScope, RegID: testRegID,
		Key: dev, GroupKey: testGroupKey, Expiry: 1893456000, KeyName: "registration"}
	sr := reference.DialectDefault.Resource(testScope, testRegID)
	sig, _ := reference.Sign("AAECAwQFBgcICQoLDA0ODw==", sr+"\n1893456000")
	tok := token(sr, reference.DialectDefault.Encode(sig), "1893456000", "registration")
	for b.Loop() {
		if diagnoseToken(in, tok) == "" {
			b.Fatal("no diagnosis")
		}
	}
}
