package reference

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Problem codes reported by CheckToken.
const (
	ProblemMalformed     = "malformed"       // the token does not parse
	ProblemMissingPrefix = "missing-prefix"  // no "SharedAccessSignature " before the fields
	ProblemBadKey        = "bad-key"         // the key given to check with is not base64
	ProblemWrongKey      = "wrong-key"       // the signature does not verify with the key
	ProblemGroupKeyUsed  = "group-key-used"  // it verifies with the group key itself, not the derived device key
	ProblemKeyNotDecoded = "key-not-decoded" // HMAC keyed with the base64 text of the key instead of its bytes
	// ProblemGroupKeyNotDecoded: the device key was derived with the base64
	// text of the group key as HMAC key.
	ProblemGroupKeyNotDecoded = "group-key-not-decoded"
	// ProblemSREncodingMismatch: the right key signed another encoding of
	// the same resource than the sr sent (e.g. "%2F" signed, "%2f" sent).
	ProblemSREncodingMismatch = "sr-encoding-mismatch"
	ProblemResourceMismatch   = "resource-mismatch" // decoded sr is not {idScope}/registrations/{registrationId}
	ProblemExpired            = "expired"           // se is not after now
	ProblemClockNotSet        = "clock-not-set"     // se is before 2000-01-01: the device clock was never set
	ProblemExpiryTooFar       = "expiry-too-far"    // se is more than MaxTokenLifetime after now
	ProblemSigNotEncoded      = "sig-not-encoded"   // sig holds a raw '+', '/' or '='
	ProblemSRNotEncoded       = "sr-not-encoded"    // sr holds a raw '/'
	ProblemWrongSKN           = "wrong-skn"         // skn present but not "registration"
	ProblemDialectMismatch    = "dialect-mismatch"  // not written in CheckOptions.Dialect
)

// MaxTokenLifetime is how far in the future an expiry may be before
// CheckToken calls it implausible (ProblemExpiryTooFar).
const MaxTokenLifetime = 365 * 24 * time.Hour

// clockSetEpoch: an expiry before this (2000-01-01T00:00:00Z) means the device
// signed with a clock that was never set (time counted from 1970).
const clockSetEpoch = 946684800

// Problem is one thing wrong with a token.
type Problem struct {
	Code    string
	Message string
}

// CheckOptions say what a token is checked against.
type CheckOptions struct {
	IDScope        string    // with RegistrationID: the resource sr must name; "" = not checked
	RegistrationID string    // compared case-insensitively
	Now            time.Time // zero = time.Now()
	// GroupKey, when set, says the key given to CheckToken is a device key
	// derived from this group key; a token signed with the group key itself
	// is then reported as ProblemGroupKeyUsed.
	GroupKey string
	// Dialect, when set, is the dialect the token is expected in; a token
	// that no formatting in it reproduces gets ProblemDialectMismatch, even
	// when its signature verifies.
	Dialect Dialect
}

// TokenCheck is what CheckToken found.
type TokenCheck struct {
	Valid       bool      // the signature verifies and there are no problems
	SignatureOK bool      // the signature verifies with the key (other problems aside)
	Token       Token     // the parsed token (zero when malformed)
	Resource    string    // decoded sr
	Dialects    []Dialect // dialects that reproduce the token byte for byte
	Expiry      time.Time
	ExpiresIn   time.Duration // Expiry - Now; negative when expired
	Problems    []Problem
}

// Has reports whether the check found a problem with the given code.
func (c TokenCheck) Has(code string) bool {
	for _, p := range c.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

// Summary is one line saying whether the token is valid, in which dialect,
// and what is wrong with it. It holds no secret.
func (c TokenCheck) Summary() string {
	var b strings.Builder
	if c.Valid {
		b.WriteString("valid")
	} else {
		b.WriteString("invalid")
	}
	if len(c.Dialects) > 0 {
		ds := make([]string, len(c.Dialects))
		for i, d := range c.Dialects {
			ds[i] = string(d)
		}
		fmt.Fprintf(&b, " %s token", strings.Join(ds, "/"))
	} else if !c.Has(ProblemMalformed) {
		b.WriteString(" token in no known dialect")
	}
	switch {
	case c.Expiry.IsZero():
	case c.ExpiresIn > 0:
		fmt.Fprintf(&b, ", expires %s (in %s)", c.Expiry.Format(time.RFC3339), c.ExpiresIn.Round(time.Second))
	default:
		fmt.Fprintf(&b, ", expired %s (%s ago)", c.Expiry.Format(time.RFC3339), (-c.ExpiresIn).Round(time.Second))
	}
	for _, p := range c.Problems {
		fmt.Fprintf(&b, "; %s: %s", p.Code, p.Message)
	}
	return b.String()
}

// CheckToken checks a token someone else produced (a board, an SDK): whether
// its signature verifies with key, which dialect(s) it is written in, when it
// expires, and what is wrong with it. The checks follow what DPS does as far
// as the project's facts establish (an inference from the SDKs in production,
// not documented by the service): the HMAC is over sr exactly as sent + "\n" +
// se, the decoded sr must be {idScope}/registrations/{registrationId}, the
// registration id is case-insensitive, and skn is absent or "registration".
func CheckToken(token, key string, opts CheckOptions) TokenCheck {
	var c TokenCheck
	add := func(code, format string, args ...any) {
		c.Problems = append(c.Problems, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	t, err := ParseToken(token)
	if err != nil {
		add(ProblemMalformed, "%v", err)
		return c
	}
	c.Token = t
	res, err := t.DecodedResource()
	if err != nil {
		add(ProblemMalformed, "%v", err)
		return c
	}
	if _, err := t.DecodedSignature(); err != nil {
		add(ProblemMalformed, "%v", err)
		return c
	}
	c.Resource = res
	c.Dialects = MatchDialects(t)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	c.Expiry = time.Unix(t.Expiry, 0).UTC()
	c.ExpiresIn = c.Expiry.Sub(now)

	if !t.HasPrefix {
		add(ProblemMissingPrefix, "the token does not start with %q", TokenPrefix)
	}
	if strings.ContainsAny(t.Sig, "+/=") {
		add(ProblemSigNotEncoded, "sig holds a raw '+', '/' or '=': the base64 signature must be URL-encoded")
	}
	if strings.Contains(t.SR, "/") {
		add(ProblemSRNotEncoded, "sr holds a raw '/': the resource must be URL-encoded (e.g. %%2F)")
	}

	if _, err := DecodeKey(key); err != nil {
		add(ProblemBadKey, "the key to check with: %v", err)
	} else {
		c.SignatureOK = t.Verify(key)
	}
	if !c.SignatureOK && !c.Has(ProblemBadKey) {
		code, msg := diagnoseSignature(t, res, key, opts)
		add(code, "%s", msg)
	}

	if opts.IDScope != "" || opts.RegistrationID != "" {
		want := RawResource(opts.IDScope, opts.RegistrationID)
		if !resourceMatches(res, opts.IDScope, opts.RegistrationID) {
			hint := ""
			if strings.EqualFold(res, want) {
				hint = " (only letter case differs: the id scope and \"registrations\" are compared exactly, the registration id case-insensitively)"
			}
			add(ProblemResourceMismatch, "sr decodes to %q, want %q%s", res, want, hint)
		}
	}

	switch {
	case t.Expiry < clockSetEpoch:
		add(ProblemClockNotSet, "se %d is %s, before 2000: the device clock was probably never set (no SNTP)", t.Expiry, c.Expiry.Format(time.RFC3339))
		add(ProblemExpired, "the token expired at %s", c.Expiry.Format(time.RFC3339))
	case !c.Expiry.After(now):
		add(ProblemExpired, "the token expired at %s, %s before now", c.Expiry.Format(time.RFC3339), (-c.ExpiresIn).Round(time.Second))
	case c.ExpiresIn > MaxTokenLifetime:
		add(ProblemExpiryTooFar, "se is %s after now, more than %s: the device clock or the TTL is wrong", c.ExpiresIn.Round(time.Second), MaxTokenLifetime)
	}

	if opts.Dialect != "" && !containsDialect(c.Dialects, opts.Dialect) {
		in := "no known dialect"
		if len(c.Dialects) > 0 {
			in = string(c.Dialects[0])
			for _, d := range c.Dialects[1:] {
				in += "/" + string(d)
			}
		}
		add(ProblemDialectMismatch, "the token is written in %s, not in the expected %s", in, opts.Dialect)
	}
	if t.HasSKN && t.SKN != "registration" {
		add(ProblemWrongSKN, "skn is %q; DPS symmetric-key registration uses \"registration\" or no skn", t.SKN)
	}
	c.Valid = c.SignatureOK && len(c.Problems) == 0
	return c
}

// resourceMatches compares a decoded resource with
// {idScope}/registrations/{registrationId}; the registration id is compared
// case-insensitively (DPS registration ids are case-insensitive).
func resourceMatches(res, idScope, registrationID string) bool {
	prefix := idScope + "/registrations/"
	if !strings.HasPrefix(res, prefix) {
		return false
	}
	return strings.EqualFold(res[len(prefix):], registrationID)
}

func containsDialect(ds []Dialect, d Dialect) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// diagnoseSignature explains a signature that does not verify with key by
// trying the usual mistakes: another encoding of the resource signed than
// sent, the group key used directly, a key used as base64 text instead of
// its bytes, a device key derived with the group key's text or for the
// registration id in another letter case.
func diagnoseSignature(t Token, res, key string, opts CheckOptions) (code, msg string) {
	sig, err := t.DecodedSignature()
	if err != nil {
		return ProblemMalformed, err.Error()
	}
	want, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(want) != sha256.Size {
		return ProblemWrongKey, "sig is not a base64 HMAC-SHA256 (32 bytes), so it cannot verify with any key"
	}
	sent := t.SR + "\n" + t.SE
	verifies := func(k []byte, msg string) bool { return hmac.Equal(want, macBytes(k, msg)) }
	// Other encodings of the same resource, for a key that signed the wrong string.
	var others []string
	seen := map[string]bool{t.SR: true}
	for _, d := range Dialects() {
		for _, f := range append(d.resourceForms(res), res) {
			for _, e := range []string{f, strings.ToLower(f)} {
				if !seen[e] {
					seen[e] = true
					others = append(others, e)
				}
			}
		}
	}
	signedWith := func(k []byte) (string, bool) {
		if verifies(k, sent) {
			return t.SR, true
		}
		for _, o := range others {
			if verifies(k, o+"\n"+t.SE) {
				return o, true
			}
		}
		return "", false
	}
	also := func(signed string) string {
		if signed == t.SR {
			return ""
		}
		return fmt.Sprintf(" (and it signed %q while sending sr=%q)", signed, t.SR)
	}
	kb, _ := DecodeKey(key)
	if signed, ok := signedWith(kb); ok {
		return ProblemSREncodingMismatch, fmt.Sprintf("the key is right but it signed %q while the token sends sr=%q; sign exactly the sr you send", signed, t.SR)
	}
	if gk, err := DecodeKey(opts.GroupKey); opts.GroupKey != "" && err == nil {
		if signed, ok := signedWith(gk); ok {
			return ProblemGroupKeyUsed, "the token is signed with the group enrollment key itself; sign with the device key derived from it for the registration id" + also(signed)
		}
	}
	if signed, ok := signedWith([]byte(key)); ok {
		return ProblemKeyNotDecoded, "the HMAC was keyed with the base64 text of the key; base64-decode the key first" + also(signed)
	}
	if opts.GroupKey != "" {
		ids := []string{opts.RegistrationID}
		if i := strings.LastIndex(res, "/registrations/"); i >= 0 {
			ids = append(ids, res[i+len("/registrations/"):])
		}
		gk, gkErr := DecodeKey(opts.GroupKey)
		for _, id := range ids {
			if id == "" {
				continue
			}
			if signed, ok := signedWith(macBytes([]byte(opts.GroupKey), id)); ok {
				return ProblemGroupKeyNotDecoded, "the device key was derived with the base64 text of the group key; base64-decode the group key first" + also(signed)
			}
			if gkErr != nil {
				continue
			}
			for _, v := range []string{strings.ToLower(id), strings.ToUpper(id)} {
				if v == id {
					continue
				}
				if signed, ok := signedWith(macBytes(gk, v)); ok {
					return ProblemWrongKey, fmt.Sprintf("the device key was derived for registration id %q, not %q (letter case differs; derive from the exact id)", v, id) + also(signed)
				}
			}
		}
	}
	return ProblemWrongKey, fmt.Sprintf("the signature does not verify with the given key over %q", sent)
}
