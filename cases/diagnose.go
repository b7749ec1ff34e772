package cases

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// The diagnosers below name the cause of a difference between a board's
// bytes and the reference's by testing hypotheses, one common firmware
// mistake at a time, against the board's bytes: the first hypothesis that
// reproduces what the board sent is the diagnosis. The hypotheses follow the
// mistakes seen in the field (/work/shared/seed: an ESP32 group-enrollment
// request rejected with 401002) and the differences between official SDKs
// (shared/dps/FACTS.md §2).

// tokenInputs is what a token should have been made from.
type tokenInputs struct {
	Dialect     reference.Dialect
	DialectFrom string // "the bench declared", "the board reported in HELLO"
	IDScope     string
	RegID       string
	Resource    string // raw resource instead of IDScope/RegID
	Key         string // device key that should sign (base64)
	GroupKey    string // group key Key was derived from, if any
	Expiry      int64  // expected se
	FromClock   bool   // se came from the board's clock plus a ttl
	TTL         int64  // that ttl (seconds), when FromClock
	KeyName     string // expected skn ("" = none)
}

// rawResource is the decoded resource the token should name.
func (in tokenInputs) rawResource() string {
	if in.Resource != "" {
		return in.Resource
	}
	return reference.RawResource(in.IDScope, in.RegID)
}

// encodedResource is the sr the dialect writes.
func (in tokenInputs) encodedResource() string {
	if in.Resource != "" {
		return in.Dialect.Encode(in.Resource)
	}
	return in.Dialect.Resource(in.IDScope, in.RegID)
}

// referenceSAS builds the expected token with the reference. NewSAS refuses
// an expiry of 0; the parts are then assembled from the same reference
// functions NewSAS uses.
func referenceSAS(in tokenInputs) (reference.SAS, error) {
	if in.Expiry > 0 {
		return reference.NewSAS(reference.SASParams{Dialect: in.Dialect, IDScope: in.IDScope, RegistrationID: in.RegID,
			Resource: in.Resource, Key: in.Key, Expiry: in.Expiry, KeyName: in.KeyName})
	}
	enc := in.encodedResource()
	sts := reference.StringToSign(enc, in.Expiry)
	sig, err := reference.Sign(in.Key, sts)
	if err != nil {
		return reference.SAS{}, fmt.Errorf("sas: %w", err)
	}
	return reference.SAS{Dialect: in.Dialect, Resource: in.rawResource(), EncodedResource: enc, StringToSign: sts,
		Signature: sig, Token: reference.FormatToken(in.Dialect, enc, sig, in.Expiry, in.KeyName),
		Expiry: in.Expiry, KeyName: in.KeyName}, nil
}

// hmacB64 is base64(HMAC-SHA256(key, msg)) with raw key bytes.
func hmacB64(key []byte, msg string) string {
	return base64.StdEncoding.EncodeToString(hmacRaw(key, msg))
}

func hmacRaw(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func decodeKey(k string) []byte {
	b, err := reference.DecodeKey(k)
	if err != nil {
		return nil
	}
	return b
}

// keyHypothesis is a key a buggy board may have signed with.
type keyHypothesis struct {
	key   []byte
	cause string
}

// wrongKeys lists the keys a board may have used instead of in.Key, each
// with the cause it stands for.
func wrongKeys(in tokenInputs) []keyHypothesis {
	var hs []keyHypothesis
	dev := decodeKey(in.Key)
	if in.GroupKey != "" {
		if g := decodeKey(in.GroupKey); g != nil {
			hs = append(hs, keyHypothesis{g, "signed with the group key instead of the derived device key"})
			hs = append(hs, keyHypothesis{decodeKey(hmacB64([]byte(in.GroupKey), in.RegID)),
				"device key derived from the group key's base64 text instead of its decoded bytes"})
			for _, id := range regIDVariants(in.RegID) {
				hs = append(hs, keyHypothesis{decodeKey(hmacB64(g, id.id)), "device key derived from " + id.what})
			}
			for n := 1; n < len(g); n++ {
				hs = append(hs, keyHypothesis{decodeKey(hmacB64(g[:n], in.RegID)),
					"device key derived from a truncated group key " + truncation(n, len(g))})
			}
			hs = append(hs, keyHypothesis{[]byte(in.GroupKey), "signed with the group key's base64 text instead of the derived device key"})
		}
	}
	hs = append(hs, keyHypothesis{[]byte(in.Key), "signed with the device key's base64 text instead of its decoded bytes"})
	for n := 1; n < len(dev); n++ {
		hs = append(hs, keyHypothesis{dev[:n], "signed with a truncated key " + truncation(n, len(dev))})
	}
	return hs
}

// truncation describes a key cut to its first n of total bytes; when n
// bytes are a whole number of base64 quads it names the text length too (a
// key copied into a fixed-size character buffer).
func truncation(n, total int) string {
	s := fmt.Sprintf("(first %d of %d bytes", n, total)
	if n%3 == 0 {
		s += fmt.Sprintf(": its base64 text cut to %d of %d characters", n/3*4, (total+2)/3*4)
	}
	return s + ")"
}

type regIDVariant struct{ id, what string }

// regIDVariants are registration ids a board may have used by mistake.
func regIDVariants(id string) []regIDVariant {
	var vs []regIDVariant
	if l := strings.ToLower(id); l != id {
		vs = append(vs, regIDVariant{l, "the lowercased registration id"})
	}
	if u := strings.ToUpper(id); u != id {
		vs = append(vs, regIDVariant{u, "the uppercased registration id"})
	}
	vs = append(vs, regIDVariant{id + "\n", "the registration id with a trailing newline (echo without -n)"})
	vs = append(vs, regIDVariant{id + "\x00", "the registration id with its terminating NUL byte"})
	return vs
}

// diagnoseToken names why a board's token differs from the reference's
// token for the same inputs. It returns "" when got equals the reference.
func diagnoseToken(in tokenInputs, got string) string {
	ref, err := referenceSAS(in)
	if err != nil {
		return "cannot build the reference token: " + err.Error()
	}
	if got == ref.Token {
		return ""
	}
	if got == "" {
		return "no token"
	}
	if strings.HasPrefix(ref.Token, got) {
		if strings.HasPrefix(ref.Token[len(got):], "&skn=") {
			return fmt.Sprintf("missing skn (expected skn=%s)", in.KeyName)
		}
		return fmt.Sprintf("truncated token (%d of %d bytes)", len(got), len(ref.Token))
	}
	tok, err := reference.ParseToken(got)
	if err != nil {
		if i := strings.Index(got, "SharedAccessSignature"); i > 0 {
			return fmt.Sprintf("malformed token: %d bytes before \"SharedAccessSignature\"", i)
		}
		return "malformed token: " + err.Error()
	}
	if !tok.HasPrefix {
		return "missing \"SharedAccessSignature \" prefix"
	}
	if c := diagnoseExpiry(in, tok.Expiry); c != "" {
		return c
	}
	if strings.Contains(tok.SR, "/") {
		return "sr not URL-encoded (raw '/' in the resource)"
	}
	if strings.ContainsAny(tok.Sig, "+/=") {
		return "signature not URL-encoded (raw '+', '/' or '=' in sig)"
	}
	res, err := tok.DecodedResource()
	if err != nil {
		return "malformed sr: " + err.Error()
	}
	if c := diagnoseResource(in, res); c != "" {
		return c
	}
	sig, err := tok.DecodedSignature()
	if err != nil {
		return "malformed sig: " + err.Error()
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	switch {
	case err != nil:
		if _, err2 := base64.RawStdEncoding.DecodeString(sig); err2 == nil {
			return "signature lacks its base64 '=' padding"
		}
		if _, err2 := base64.URLEncoding.DecodeString(sig); err2 == nil {
			return "signature in URL-safe base64 ('-', '_') instead of standard base64"
		}
		return "signature is not base64"
	case len(raw) < sha256.Size:
		return fmt.Sprintf("truncated signature (%d of %d bytes)", len(raw), sha256.Size)
	}
	verifies := tok.Verify(in.Key)
	if verifies {
		if ds := reference.MatchDialects(tok); len(ds) > 0 && !slices.Contains(ds, in.Dialect) {
			return fmt.Sprintf("valid %s token, but %s %s", joinDialects(ds), in.DialectFrom, in.Dialect)
		}
	}
	if c := diagnoseSKN(in, tok); c != "" {
		return c
	}
	if !verifies {
		return diagnoseSignature(in, tok, raw, res)
	}
	if !slices.Equal(tok.Fields, []string{"sr", "sig", "se", "skn"}[:len(tok.Fields)]) {
		return fmt.Sprintf("fields in another order (%s instead of sr, sig, se, skn)", strings.Join(tok.Fields, ", "))
	}
	if tok.SR != ref.EncodedResource {
		return fmt.Sprintf("sr encoded differently from %s (%q instead of %q)", in.Dialect, tok.SR, ref.EncodedResource)
	}
	if tok.Sig != in.Dialect.Encode(sig) {
		return fmt.Sprintf("sig percent-encoded differently from %s", in.Dialect)
	}
	return "token differs from the reference although its signature verifies (cause not identified)"
}

func joinDialects(ds []reference.Dialect) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, "/")
}

// diagnoseExpiry explains a wrong se.
func diagnoseExpiry(in tokenInputs, se int64) string {
	if se == in.Expiry {
		return ""
	}
	when := time.Unix(se, 0).UTC().Format(time.RFC3339)
	switch {
	case in.FromClock && se < clockSetEpoch:
		return fmt.Sprintf("expiry from an unset clock: se=%d is %s (the board's clock was never set)", se, when)
	case in.Expiry > 0xFFFFFFFF && se == in.Expiry&0xFFFFFFFF:
		return fmt.Sprintf("expiry truncated to 32 bits (se=%d instead of %d)", se, in.Expiry)
	case in.Expiry > 0x7FFFFFFF && in.Expiry <= 0xFFFFFFFF && se == in.Expiry&0x7FFFFFFF:
		return fmt.Sprintf("expiry truncated to 31 bits (se=%d instead of %d)", se, in.Expiry)
	case in.Expiry > 0 && near(se/1000, in.Expiry, ttlSlack):
		return fmt.Sprintf("expiry in milliseconds instead of seconds (se=%d)", se)
	case in.FromClock && in.TTL > 0 && near(se, in.Expiry-in.TTL, ttlSlack):
		return fmt.Sprintf("ttl not added: se=%d is the current time, expected clock + %d s", se, in.TTL)
	case in.FromClock && in.TTL > 0 && near(se, in.Expiry-in.TTL+in.TTL*1000, ttlSlack):
		return fmt.Sprintf("ttl taken as milliseconds: se=%d is clock + %d s, expected clock + %d s", se, in.TTL*1000, in.TTL)
	case in.FromClock:
		return fmt.Sprintf("wrong expiry: se=%d is %s, expected %d (clock + ttl), %+d s off", se, when, in.Expiry, se-in.Expiry)
	}
	return fmt.Sprintf("wrong expiry: se=%d, expected %d", se, in.Expiry)
}

// near reports whether a and b are at most slack apart.
func near(a, b, slack int64) bool { return a-b <= slack && b-a <= slack }

// diagnoseResource explains a decoded sr that is not the expected resource.
func diagnoseResource(in tokenInputs, res string) string {
	want := in.rawResource()
	if res == want {
		return ""
	}
	if strings.ToLower(want) == res && want != res {
		return fmt.Sprintf("resource lowercased (%q instead of %q): the resource must be signed and sent as given", res, want)
	}
	if in.Resource == "" {
		scope, id, ok := strings.Cut(res, "/registrations/")
		switch {
		case !ok:
			return fmt.Sprintf("wrong resource: sr decodes to %q, expected %q", res, want)
		case scope != in.IDScope:
			return fmt.Sprintf("wrong resource: sr names scope %q instead of %q", scope, in.IDScope)
		case strings.EqualFold(id, in.RegID):
			return fmt.Sprintf("wrong resource: registration id case changed (%q instead of %q)", id, in.RegID)
		default:
			return fmt.Sprintf("wrong resource: sr names registration id %q instead of %q", id, in.RegID)
		}
	}
	if strings.EqualFold(res, want) {
		return fmt.Sprintf("wrong resource: case changed (%q instead of %q)", res, want)
	}
	return fmt.Sprintf("wrong resource: sr decodes to %q, expected %q", res, want)
}

// diagnoseSKN explains a wrong or missing skn.
func diagnoseSKN(in tokenInputs, tok reference.Token) string {
	switch {
	case in.KeyName != "" && !tok.HasSKN:
		return fmt.Sprintf("missing skn (expected skn=%s)", in.KeyName)
	case in.KeyName == "" && tok.HasSKN:
		return fmt.Sprintf("unexpected skn=%s (%s sends none here)", tok.SKN, in.Dialect)
	case in.KeyName != tok.SKN:
		return fmt.Sprintf("wrong skn: %q instead of %q", tok.SKN, in.KeyName)
	}
	return ""
}

// diagnoseSignature explains a signature that does not verify with the
// device key over sr + "\n" + se: another key, or another string signed.
func diagnoseSignature(in tokenInputs, tok reference.Token, sig []byte, res string) string {
	sts := tok.SR + "\n" + tok.SE
	for _, h := range wrongKeys(in) {
		if h.key != nil && hmac.Equal(sig, hmacRaw(h.key, sts)) {
			return h.cause
		}
	}
	dev := decodeKey(in.Key)
	signed := func(msg string) bool { return dev != nil && hmac.Equal(sig, hmacRaw(dev, msg)) }
	// Another string signed with the right key.
	candidates := []struct{ msg, cause string }{
		{res + "\n" + tok.SE, "signed the unencoded resource instead of sr as sent"},
		{tok.SR, "string-to-sign lacks \"\\n\" and the expiry"},
		{tok.SR + tok.SE, "string-to-sign lacks the \"\\n\" between sr and se"},
		{tok.SR + "\r\n" + tok.SE, "string-to-sign uses \"\\r\\n\" instead of \"\\n\""},
		{tok.SR + "\n" + tok.SE + "\n", "string-to-sign has a trailing newline"},
		{strings.ToLower(res) + "\n" + tok.SE, "signed the lowercased, unencoded resource"},
	}
	for _, d := range reference.Dialects() {
		for _, enc := range resourceEncodings(d, in, res) {
			if enc != tok.SR {
				candidates = append(candidates, struct{ msg, cause string }{enc + "\n" + tok.SE,
					fmt.Sprintf("the string signed (sr=%s) differs from the sr sent (%s)", enc, tok.SR)})
			}
		}
	}
	for _, c := range candidates {
		if signed(c.msg) {
			return c.cause
		}
	}
	if in.GroupKey != "" && in.Expiry != tok.Expiry {
		return "signature does not verify with the derived device key (expiry also differs)"
	}
	return "signature does not verify with the device key (cause not identified: wrong key or another string signed)"
}

// resourceEncodings lists ways the resource may have been encoded for
// signing: each dialect's form, and sr with the hex case flipped.
func resourceEncodings(d reference.Dialect, in tokenInputs, res string) []string {
	var out []string
	if in.Resource == "" {
		if scope, id, ok := strings.Cut(res, "/registrations/"); ok {
			out = append(out, d.Resource(scope, id))
		}
	}
	out = append(out, d.Encode(res))
	out = append(out, flipHexCase(d.Encode(res), true), flipHexCase(d.Encode(res), false))
	return out
}

// flipHexCase rewrites the hex digits of %XX escapes in upper or lower case.
func flipHexCase(s string, upper bool) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			if upper && b[j] >= 'a' && b[j] <= 'f' {
				b[j] -= 'a' - 'A'
			} else if !upper && b[j] >= 'A' && b[j] <= 'F' {
				b[j] += 'a' - 'A'
			}
		}
		i += 2
	}
	return string(b)
}

// diagnoseDeviceKey names why a board's derived device key differs from
// the reference's. It returns "" when got is right.
func diagnoseDeviceKey(groupKey, regID, got string) string {
	want, err := reference.DeriveDeviceKey(groupKey, regID)
	if err != nil {
		return "cannot derive the reference key: " + err.Error()
	}
	if got == want {
		return ""
	}
	if got == "" {
		return "no device key"
	}
	if got == strings.TrimRight(want, "=") {
		return "device key lacks its base64 '=' padding"
	}
	if strings.HasPrefix(want, got) {
		return fmt.Sprintf("truncated device key (%d of %d characters)", len(got), len(want))
	}
	if got == groupKey {
		return "returned the group key unchanged instead of deriving"
	}
	g := decodeKey(groupKey)
	if got == hmacB64([]byte(groupKey), regID) {
		return "derived from the group key's base64 text instead of its decoded bytes"
	}
	for _, v := range regIDVariants(regID) {
		if got == hmacB64(g, v.id) {
			return "derived from " + v.what
		}
	}
	mac := hmacRaw(g, regID)
	switch got {
	case base64.RawStdEncoding.EncodeToString(mac):
		return "device key lacks its base64 '=' padding"
	case base64.URLEncoding.EncodeToString(mac), base64.RawURLEncoding.EncodeToString(mac):
		return "device key in URL-safe base64 ('-', '_') instead of standard base64"
	case hex.EncodeToString(mac), strings.ToUpper(hex.EncodeToString(mac)):
		return "device key hex-encoded instead of base64"
	}
	for n := 1; n < len(g); n++ {
		if got == hmacB64(g[:n], regID) {
			return "derived from a truncated group key " + truncation(n, len(g))
		}
	}
	if b, err := base64.StdEncoding.DecodeString(got); err == nil && len(b) != sha256.Size {
		return fmt.Sprintf("device key is %d bytes, not the %d of an HMAC-SHA256", len(b), sha256.Size)
	}
	return "not HMAC-SHA256 of the registration id with the decoded group key (cause not identified)"
}

// diagnoseRequest names why a board's DPS request differs from the
// reference's, part by part in the order of the canonical form.
func diagnoseRequest(want, got reference.CanonicalRequest, tokIn tokenInputs) string {
	if got.Method != want.Method {
		return fmt.Sprintf("method %s instead of %s", got.Method, want.Method)
	}
	if got.Path != want.Path {
		if strings.EqualFold(got.Path, want.Path) {
			return fmt.Sprintf("path case changed (%s instead of %s)", got.Path, want.Path)
		}
		return fmt.Sprintf("wrong path %s (expected %s)", got.Path, want.Path)
	}
	if got.Query != want.Query {
		gq, _ := url.ParseQuery(got.Query)
		wq, _ := url.ParseQuery(want.Query)
		gv, wv := gq.Get("api-version"), wq.Get("api-version")
		switch {
		case gv == "":
			return "no api-version in the query"
		case gv != wv:
			return fmt.Sprintf("wrong api-version %s (expected %s)", gv, wv)
		}
		return fmt.Sprintf("query %q instead of %q", got.Query, want.Query)
	}
	for _, name := range []string{"Host", "Content-Type", "Content-Length", "Authorization"} {
		wv, wok := want.Header(name)
		gv, gok := got.Header(name)
		switch {
		case wok && !gok:
			return fmt.Sprintf("no %s header", name)
		case !wok && gok:
			return fmt.Sprintf("unexpected %s header", name)
		case wv == gv:
			continue
		}
		switch name {
		case "Host":
			return fmt.Sprintf("Host header %q instead of %q", gv, wv)
		case "Content-Type":
			return fmt.Sprintf("Content-Type %q instead of %q", gv, wv)
		case "Content-Length":
			if n, err := strconv.Atoi(gv); err == nil && n != len(got.Body) {
				return fmt.Sprintf("Content-Length %s does not match the body (%d bytes)", gv, len(got.Body))
			}
			// The body differs in length: explained below.
			if c := diagnoseBody(want.Body, got.Body, tokIn.RegID); c != "" {
				return c
			}
			return fmt.Sprintf("Content-Length %s instead of %s", gv, wv)
		case "Authorization":
			if c := diagnoseToken(tokIn, gv); c != "" {
				return "Authorization: " + c
			}
			return "Authorization header differs"
		}
	}
	if c := diagnoseBody(want.Body, got.Body, tokIn.RegID); c != "" {
		return c
	}
	return ""
}

// diagnoseBody explains a register body that differs from the reference's.
func diagnoseBody(want, got []byte, regID string) string {
	if string(want) == string(got) {
		return ""
	}
	var g struct {
		RegistrationID *string          `json:"registrationId"`
		Payload        *json.RawMessage `json:"payload"`
	}
	var w struct {
		Payload *json.RawMessage `json:"payload"`
	}
	_ = json.Unmarshal(want, &w)
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Sprintf("body is not JSON: %v", err)
	}
	switch {
	case g.RegistrationID == nil:
		return "body has no registrationId"
	case *g.RegistrationID != regID:
		return fmt.Sprintf("body registrationId %q does not match the registration id %q", *g.RegistrationID, regID)
	case w.Payload != nil && g.Payload == nil:
		return "payload missing from the body"
	case w.Payload == nil && g.Payload != nil:
		return "unexpected payload in the body"
	case w.Payload != nil && string(*w.Payload) != string(*g.Payload):
		return "payload not sent verbatim"
	}
	return "body formatted differently (expected {\"registrationId\":...} with no spaces)"
}
