package reference

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func genDialect() *rapid.Generator[Dialect] {
	return rapid.SampledFrom(Dialects())
}

func genRegistrationID() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		body := rapid.StringMatching(`[A-Za-z0-9._:-]{0,100}`).Draw(t, "body")
		last := rapid.StringMatching(`[A-Za-z0-9-]`).Draw(t, "last")
		return body + last
	})
}

func genKey() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		return base64.StdEncoding.EncodeToString(rapid.SliceOfN(rapid.Byte(), 16, 64).Draw(t, "key"))
	})
}

func TestPropEncodeRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := genDialect().Draw(t, "dialect")
		s := rapid.String().Draw(t, "s")
		if d == DialectAzureIoTSDKC {
			// urlencode.c turns bytes >= 0x80 into Latin-1-as-UTF-8; only ASCII round-trips.
			s = rapid.StringMatching(`[\x00-\x7f]*`).Draw(t, "ascii")
		}
		enc := d.Encode(s)
		dec, err := url.PathUnescape(enc)
		if err != nil || dec != s {
			t.Fatalf("%s: PathUnescape(Encode(%q)) = %q, %v", d, s, dec, err)
		}
		hexDigits := "0123456789ABCDEF"
		if d == DialectAzureIoTSDKC {
			hexDigits = "0123456789abcdef"
		}
		for i := 0; i < len(enc); i++ {
			if enc[i] == '%' {
				if !strings.ContainsRune(hexDigits, rune(enc[i+1])) || !strings.ContainsRune(hexDigits, rune(enc[i+2])) {
					t.Fatalf("%s: hex case wrong in %q", d, enc)
				}
				i += 2
				continue
			}
			if strings.ContainsRune("/+=&? ", rune(enc[i])) {
				t.Fatalf("%s: %q left unencoded in %q", d, enc[i], enc)
			}
		}
	})
}

func TestPropIoTSDKCNonASCII(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := rapid.ByteRange(0x80, 0xff).Draw(t, "c")
		dec, err := url.PathUnescape(encodeIoTSDKC(string([]byte{c})))
		// urlencode.c writes the byte as the UTF-8 form of the Latin-1 code point.
		if err != nil || dec != string(rune(c)) {
			t.Fatalf("byte 0x%02x decodes to %q, %v; want %q", c, dec, err, string(rune(c)))
		}
	})
}

// TestPropTokenRoundTrip: every token NewSAS builds parses back into its
// parts, verifies with its key and not with another, matches its own dialect,
// and passes CheckToken.
func TestPropTokenRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := genDialect().Draw(t, "dialect")
		scope := rapid.StringMatching(`[A-Za-z0-9]{1,16}`).Draw(t, "scope")
		id := genRegistrationID().Draw(t, "id")
		key := genKey().Draw(t, "key")
		other := genKey().Draw(t, "other")
		now := time.Unix(rapid.Int64Range(1e9, 4e9).Draw(t, "now"), 0)
		exp := now.Add(time.Duration(rapid.Int64Range(1, 86400*300).Draw(t, "ttl")) * time.Second).Unix()
		kn := rapid.SampledFrom([]string{"", "registration"}).Draw(t, "keyName")
		s, err := NewSAS(SASParams{Dialect: d, IDScope: scope, RegistrationID: id, Key: key, Expiry: exp, KeyName: kn})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ParseToken(s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if tok.SR != s.EncodedResource || tok.Expiry != exp || tok.HasSKN != (kn != "") || tok.SKN != kn {
			t.Fatalf("parsed %+v from %+v", tok, s)
		}
		if sig, _ := tok.DecodedSignature(); sig != s.Signature {
			t.Fatalf("signature %q, want %q", sig, s.Signature)
		}
		if res, _ := tok.DecodedResource(); res != RawResource(scope, id) {
			t.Fatalf("resource %q", res)
		}
		if !tok.Verify(key) {
			t.Fatal("does not verify")
		}
		if other != key && tok.Verify(other) {
			t.Fatal("verifies with another key")
		}
		if !containsDialect(MatchDialects(tok), d) {
			t.Fatalf("MatchDialects = %v, want %s", MatchDialects(tok), d)
		}
		c := CheckToken(s.Token, key, CheckOptions{IDScope: scope, RegistrationID: strings.ToUpper(id), Now: now})
		if !c.Valid || len(c.Problems) != 0 {
			t.Fatalf("CheckToken: %s", c.Summary())
		}
	})
}

// TestPropParseTokenFieldOrder: field order does not change what is parsed.
func TestPropParseTokenFieldOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		fields := []string{"sr=a%2Fb", "sig=c%3D", "se=123", "skn=registration"}
		perm := rapid.Permutation(fields).Draw(t, "perm")
		tok, err := ParseToken(TokenPrefix + strings.Join(perm, "&"))
		if err != nil {
			t.Fatal(err)
		}
		if tok.SR != "a%2Fb" || tok.Sig != "c%3D" || tok.Expiry != 123 || tok.SKN != "registration" {
			t.Fatalf("%+v", tok)
		}
	})
}

func TestPropFirstDivergence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 40).Draw(t, "a")
		b := rapid.SliceOfN(rapid.ByteRange('a', 'c'), 0, 40).Draw(t, "b")
		if rapid.Bool().Draw(t, "prefix") {
			b = append(append([]byte{}, a...), b...)
		}
		d := FirstDivergence(a, b)
		if d == nil {
			if !bytes.Equal(a, b) {
				t.Fatal("nil for different inputs")
			}
			return
		}
		if !bytes.Equal(a[:d.Offset], b[:d.Offset]) {
			t.Fatalf("prefixes before %d differ", d.Offset)
		}
		ea, eb := d.Offset >= len(a), d.Offset >= len(b)
		if ea && eb || !ea && !eb && a[d.Offset] == b[d.Offset] {
			t.Fatalf("no difference at %d", d.Offset)
		}
		if ea != (d.ExpectedByte == -1) || eb != (d.GotByte == -1) {
			t.Fatalf("end markers wrong: %+v", d)
		}
	})
}

func TestPropRequestCanonical(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := RequestParams{
			Endpoint:       rapid.SampledFrom([]string{"", "127.0.0.1:8443", "dps.example:443"}).Draw(t, "endpoint"),
			APIVersion:     rapid.SampledFrom(append(SupportedAPIVersions(), "")).Draw(t, "version"),
			IDScope:        rapid.StringMatching(`[A-Za-z0-9]{1,12}`).Draw(t, "scope"),
			RegistrationID: genRegistrationID().Draw(t, "id"),
			OperationID:    rapid.StringMatching(`[a-z0-9.-]{1,40}`).Draw(t, "op"),
			Token:          "SharedAccessSignature " + rapid.StringMatching(`[!-~]([ -~]{0,78}[!-~])?`).Draw(t, "tok"),
		}
		if rapid.Bool().Draw(t, "payload") {
			b, _ := json.Marshal(map[string]string{"k": rapid.String().Draw(t, "v")})
			p.Payload = b
		}
		for _, f := range []func(RequestParams) ([]byte, error){RegisterRequestBytes, OperationStatusRequestBytes, RegistrationStatusRequestBytes} {
			wire, err := f(p)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseRequest(wire)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.Bytes(), wire) {
				t.Fatalf("canonical form differs:\n%s", FirstDivergence(wire, c.Bytes()).View())
			}
			if auth, _ := c.Header("Authorization"); auth != p.Token {
				t.Fatalf("Authorization %q", auth)
			}
		}
	})
}

// TestPropMutatedTokenInvalid: changing any one byte of a valid token makes
// CheckToken reject it, except a change of hex case inside a %XX of sig
// (the decoded signature is the same) which only leaves every dialect.
func TestPropMutatedTokenInvalid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := genDialect().Draw(t, "dialect")
		id := genRegistrationID().Draw(t, "id")
		key := genKey().Draw(t, "key")
		now := time.Unix(1700000000, 0)
		s, err := NewSAS(SASParams{Dialect: d, IDScope: "0ne00000A0A", RegistrationID: id, Key: key,
			Expiry: now.Add(time.Hour).Unix(), KeyName: d.DefaultKeyName()})
		if err != nil {
			t.Fatal(err)
		}
		i := rapid.IntRange(0, len(s.Token)-1).Draw(t, "at")
		c := rapid.ByteRange(0x21, 0x7e).Filter(func(c byte) bool { return c != s.Token[i] }).Draw(t, "byte")
		m := []byte(s.Token)
		m[i] = c
		sigStart := strings.Index(s.Token, "&sig=") + len("&sig=")
		sigEnd := strings.Index(s.Token, "&se=")
		inHex := i >= sigStart && i < sigEnd && (m[i-1] == '%' || m[i-2] == '%')
		caseOnly := strings.EqualFold(string(c), string(s.Token[i])) && inHex
		chk := CheckToken(string(m), key, CheckOptions{IDScope: "0ne00000A0A", RegistrationID: id, Now: now})
		switch {
		case caseOnly:
			if !chk.Valid || len(chk.Dialects) != 0 {
				t.Fatalf("hex case change in sig: valid=%v dialects=%v", chk.Valid, chk.Dialects)
			}
		case chk.Valid:
			t.Fatalf("mutated token %q still valid", m)
		}
	})
}
