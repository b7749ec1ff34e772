package mockdps

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hiltest/hiltest/reference"
)

// The verification rule. DPS does not document how it checks a device SAS
// token beyond the token form (MicrosoftDocs/azure-docs
// articles/iot-dps/concepts-symmetric-key-attestation.md). Official SDKs sign
// differently encoded sr strings (uppercase %2F in the Python SDK and the
// raw-HTTPS how-to, lowercase %2f in both C SDKs) and all work in production,
// so the service evidently verifies the HMAC over sr exactly as sent. This is
// an inference, and the mock applies it:
//
//  1. The header is "SharedAccessSignature " followed by sr, sig, se and an
//     optional skn, in any order (reference.ParseToken).
//  2. skn is absent or "registration" (the documented policy name).
//  3. sr is URL-encoded (no raw '/'); percent-decoded it must be
//     "{idScope}/registrations/{registrationId}" of the request path, the
//     registration id compared case-insensitively.
//  4. se (unix seconds) is not in the past (ClockSkew tolerated) and not
//     further ahead than MaxTokenLifetime.
//  5. sig, form-decoded as a query value ('+' reads as a space, so an
//     unencoded '+' breaks it), is base64(HMAC-SHA256(key, sr as sent +
//     "\n" + se)) for one of the enrollment's keys: the primary or secondary
//     key of the individual enrollment for the registration id, or else the
//     device key derived from a group key. Compared in constant time.
//
// Any failure is the same public 401 / 401002 "Unauthorized"; the cause goes
// to the diagnosis only.

// minPlausibleExpiry is 2000-01-01T00:00:00Z: an se before it comes from a
// device whose clock was never set.
const minPlausibleExpiry = 946684800

// authInput is what authentication looks at.
type authInput struct {
	HasAuth        bool
	Authorization  string
	IDScope        string
	RegistrationID string
	Now            time.Time
	Skew           time.Duration
	MaxLifetime    time.Duration // <0 = unlimited
}

// authDiag is a diagnosis without the request fields.
type authDiag struct {
	Cause              Cause
	Expected, Received string
	Message            string
}

// authenticate applies the verification rule and returns the enrollment the
// request authenticated as, or a diagnosis.
func (x *enrollIndex) authenticate(in authInput) (principal, *authDiag) {
	if !in.HasAuth || strings.TrimSpace(in.Authorization) == "" {
		return principal{}, &authDiag{Cause: CauseMissingAuthorization,
			Expected: "Authorization: SharedAccessSignature sr=…&sig=…&se=…[&skn=registration]",
			Received: "no Authorization header",
			Message:  "the request has no Authorization header"}
	}
	t, err := reference.ParseToken(in.Authorization)
	if err == nil && !t.HasPrefix {
		err = fmt.Errorf("token: missing %q prefix", reference.TokenPrefix)
	}
	if err != nil {
		return principal{}, &authDiag{Cause: CauseMalformedToken,
			Expected: "SharedAccessSignature sr=…&sig=…&se=…[&skn=registration]",
			Received: clip(reference.RedactToken(in.Authorization), 200),
			Message:  "the Authorization header is not a SAS token: " + err.Error()}
	}
	if t.HasSKN && t.SKN != "registration" {
		return principal{}, &authDiag{Cause: CauseWrongSKN,
			Expected: `no skn, or skn=registration`,
			Received: "skn=" + clip(t.SKN, 80),
			Message:  fmt.Sprintf("skn is %q; for device registration the policy name is \"registration\" (or leave skn out)", clip(t.SKN, 80))}
	}
	wantRes := in.IDScope + "/registrations/" + in.RegistrationID
	if strings.Contains(t.SR, "/") {
		return principal{}, &authDiag{Cause: CauseSRNotEncoded,
			Expected: "sr=" + reference.DialectDefault.Resource(in.IDScope, in.RegistrationID),
			Received: "sr=" + clip(t.SR, 200),
			Message:  "sr is not URL-encoded: '/' must be sent (and signed) as %2F or %2f"}
	}
	res, err := t.DecodedResource()
	if err != nil {
		return principal{}, &authDiag{Cause: CauseSRNotEncoded,
			Expected: "sr=" + reference.DialectDefault.Resource(in.IDScope, in.RegistrationID),
			Received: "sr=" + clip(t.SR, 200),
			Message:  "sr is not valid percent-encoding: " + err.Error()}
	}
	if d := resourceMismatch(res, in.IDScope, in.RegistrationID); d != "" {
		return principal{}, &authDiag{Cause: CauseResourceMismatch,
			Expected: wantRes, Received: clip(res, 200),
			Message: "the token's resource (decoded sr) " + d}
	}
	if d := checkExpiry(t.Expiry, in); d != nil {
		return principal{}, d
	}

	cands := x.candidates(in.RegistrationID)
	if len(cands) == 0 {
		return principal{}, &authDiag{Cause: CauseUnknownRegistration,
			Expected: "an individual enrollment for " + in.RegistrationID + " or a symmetric-key enrollment group",
			Received: "registration id " + in.RegistrationID,
			Message:  "no enrollment can authenticate this registration id"}
	}
	msg := t.SR + "\n" + t.SE
	if sig, ok := formDecodeSig(t.Sig); ok {
		for _, c := range cands {
			for _, k := range c.keys {
				if macEqual(k, msg, sig) {
					return c.who, nil
				}
			}
		}
	}
	return principal{}, x.diagnoseSignature(t, in, cands)
}

// candidate is an enrollment that may sign for a registration id, with the
// decoded keys it may sign with.
type candidate struct {
	who  principal
	keys [][]byte
}

// candidates lists who may sign for registrationID: its individual
// enrollment if there is one (it takes precedence over groups), otherwise
// every symmetric-key group with the keys derived for the id.
func (x *enrollIndex) candidates(registrationID string) []candidate {
	if ie := x.indiv[strings.ToLower(registrationID)]; ie != nil {
		return []candidate{{who: principal{indiv: ie}, keys: ie.keys}}
	}
	out := make([]candidate, 0, len(x.groups))
	for _, g := range x.groups {
		out = append(out, candidate{who: principal{group: g}, keys: x.derivedKeys(g, registrationID)})
	}
	return out
}

func resourceMismatch(res, scope, regID string) string {
	parts := strings.Split(res, "/")
	if len(parts) != 3 || parts[1] != "registrations" {
		return "is not of the form {idScope}/registrations/{registrationId}"
	}
	var d []string
	if parts[0] != scope {
		d = append(d, fmt.Sprintf("names id scope %q, the request is for %q", clip(parts[0], 80), scope))
	}
	if !strings.EqualFold(parts[2], regID) {
		d = append(d, fmt.Sprintf("names registration id %q, the request is for %q", clip(parts[2], 130), regID))
	}
	return strings.Join(d, " and ")
}

func checkExpiry(se int64, in authInput) *authDiag {
	now := in.Now.Unix()
	when := func(u int64) string {
		if u < -62135596800 || u > 253402300799 {
			return fmt.Sprint(u)
		}
		return time.Unix(u, 0).UTC().Format(time.RFC3339)
	}
	switch {
	case se < minPlausibleExpiry:
		return &authDiag{Cause: CauseClockNotSet,
			Expected: "se after now (" + when(now) + ")",
			Received: fmt.Sprintf("se=%d (%s)", se, when(se)),
			Message:  "the token expires before 2000: the device clock was not set (SNTP) when it signed"}
	case se <= now-int64(in.Skew/time.Second):
		ago := time.Duration(now-se) * time.Second
		return &authDiag{Cause: CauseExpired,
			Expected: "se after now (" + when(now) + ")",
			Received: fmt.Sprintf("se=%d (%s)", se, when(se)),
			Message:  fmt.Sprintf("the token expired %s ago", human(ago))}
	case in.MaxLifetime >= 0 && se-now > int64(in.MaxLifetime/time.Second):
		if se-now > int64(100*365*24*time.Hour/time.Second) {
			return &authDiag{Cause: CauseExpiryTooFar,
				Expected: fmt.Sprintf("se at most %s after now (%s)", human(in.MaxLifetime), when(now)),
				Received: fmt.Sprintf("se=%d (%s)", se, when(se)),
				Message:  "the token expires more than 100 years from now: the device clock is wrong or se is not in seconds"}
		}
		return &authDiag{Cause: CauseExpiryTooFar,
			Expected: fmt.Sprintf("se at most %s after now (%s)", human(in.MaxLifetime), when(now)),
			Received: fmt.Sprintf("se=%d (%s)", se, when(se)),
			Message:  fmt.Sprintf("the token expires %s from now, implausibly far: the device clock is wrong", human(time.Duration(se-now)*time.Second))}
	}
	return nil
}

// human writes a duration for people: days beyond two days, else seconds.
func human(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.Round(time.Second).String()
}

// formDecodeSig decodes sig as a query value is decoded by a form parser
// ('+' becomes a space) and then from base64.
func formDecodeSig(s string) ([]byte, bool) {
	v, err := url.QueryUnescape(s)
	if err != nil {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	return b, err == nil
}

// pathDecodeSig decodes sig keeping '+' literal.
func pathDecodeSig(s string) ([]byte, bool) {
	v, err := url.PathUnescape(s)
	if err != nil {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	return b, err == nil
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func macEqual(key []byte, msg string, sig []byte) bool {
	return hmac.Equal(mac(key, msg), sig)
}

// keyVariant is a key the device may have signed with by mistake.
type keyVariant struct {
	key   []byte
	cause Cause // "" = a correct key
	what  string
}

// diagnoseSignature works out why the signature did not verify by trying
// the usual mistakes: each wrong key, each other encoding of the signed
// string, the signature with '+' kept literal.
func (x *enrollIndex) diagnoseSignature(t reference.Token, in authInput, cands []candidate) *authDiag {
	sent := t.SR
	// Strings the device may have signed instead of the sr it sent.
	type signedVariant struct{ sr, what string }
	msgs := []signedVariant{{sent, "sr as sent"}}
	addMsg := func(sr, what string) {
		for _, m := range msgs {
			if m.sr == sr {
				return
			}
		}
		msgs = append(msgs, signedVariant{sr, what})
	}
	res, _ := t.DecodedResource()
	addMsg(hexCase(sent, true), "sr with uppercase %XX")
	addMsg(hexCase(sent, false), "sr with lowercase %xx")
	addMsg(res, "the decoded resource")
	if parts := strings.Split(res, "/"); len(parts) == 3 {
		for _, d := range reference.Dialects() {
			addMsg(d.Resource(parts[0], parts[2]), "sr in the "+string(d)+" dialect")
			addMsg(d.Resource(strings.ToLower(parts[0]), strings.ToLower(parts[2])), "lowercased resource, "+string(d)+" dialect")
		}
		addMsg(strings.ToLower(res), "the lowercased decoded resource")
	}
	formSig, formOK := formDecodeSig(t.Sig)
	litSig, litOK := pathDecodeSig(t.Sig)
	type sigVariant struct {
		sig     []byte
		literal bool
	}
	var sigs []sigVariant
	if formOK {
		sigs = append(sigs, sigVariant{formSig, false})
	}
	if litOK && (!formOK || !hmac.Equal(litSig, formSig)) {
		sigs = append(sigs, sigVariant{litSig, true})
	}

	for _, c := range cands {
		for _, kv := range x.keyVariants(c, in.RegistrationID) {
			for _, m := range msgs {
				mm := m.sr + "\n" + t.SE
				for _, sv := range sigs {
					if !macEqual(kv.key, mm, sv.sig) {
						continue
					}
					return explainMatch(c, kv, m.sr, m.what, sent, sv.literal, t)
				}
			}
		}
	}
	who := make([]string, 0, len(cands))
	for _, c := range cands {
		who = append(who, c.who.describe())
	}
	d := &authDiag{Cause: CauseWrongKey,
		Expected: "HMAC-SHA256 of \"" + clip(sent, 200) + "\\n" + t.SE + "\" with a key of " + strings.Join(who, " or "),
		Received: "sig=" + redactSecret(t.Sig),
		Message:  "the signature matches none of the enrollment's keys (primary, secondary; for groups the key derived from each group key)"}
	if strings.Contains(t.Sig, "+") || !formOK && !litOK {
		d.Message += "; note: sig holds characters that are not URL-encoded"
	}
	return d
}

// keyVariants returns the correct keys of a candidate followed by the keys a
// device may have used by mistake.
func (x *enrollIndex) keyVariants(c candidate, regID string) []keyVariant {
	var out []keyVariant
	for _, k := range c.keys {
		out = append(out, keyVariant{key: k})
	}
	if c.who.indiv != nil {
		for _, kt := range c.who.indiv.keyTexts {
			out = append(out, keyVariant{key: []byte(kt), cause: CauseKeyNotDecoded,
				what: "the base64 text of the enrollment key as HMAC key"})
		}
		return out
	}
	g := c.who.group
	for i, gk := range g.keys {
		text := g.keyTexts[i]
		derived := c.keys[i]
		derivedText := base64.StdEncoding.EncodeToString(derived)
		badDerived := mac([]byte(text), regID) // derived with the group key's text
		badDerivedText := base64.StdEncoding.EncodeToString(badDerived)
		out = append(out,
			keyVariant{key: gk, cause: CauseGroupKeyUsed, what: "the group key itself, not the derived device key"},
			keyVariant{key: []byte(text), cause: CauseGroupKeyNotDecoded, what: "the base64 text of the group key as HMAC key (signing directly with it)"},
			keyVariant{key: badDerived, cause: CauseGroupKeyNotDecoded, what: "a device key derived with the base64 text of the group key as HMAC key"},
			keyVariant{key: []byte(badDerivedText), cause: CauseGroupKeyNotDecoded, what: "a device key derived with the base64 text of the group key, then its text used as HMAC key"},
			keyVariant{key: []byte(derivedText), cause: CauseKeyNotDecoded, what: "the base64 text of the (correctly) derived device key as HMAC key"},
		)
	}
	return out
}

func explainMatch(c candidate, kv keyVariant, signed, signedWhat, sent string, literalSig bool, t reference.Token) *authDiag {
	switch {
	case kv.cause != "":
		d := &authDiag{Cause: kv.cause,
			Expected: "HMAC keyed with the decoded " + keyKind(c) + " of " + c.who.describe(),
			Received: "HMAC keyed with " + kv.what,
			Message:  "the token was signed with " + kv.what}
		if signed != sent {
			d.Message += "; also, the signed string was " + signedWhat + ", not the sr sent"
		}
		return d
	case signed != sent:
		return &authDiag{Cause: CauseSREncodingMismatch,
			Expected: "signed string = sr as sent: " + clip(sent, 200),
			Received: "signed: " + clip(signed, 200) + " (" + signedWhat + ")",
			Message:  "the key is right but the device signed a different string than the sr it sent: the HMAC covers sr exactly as sent"}
	case literalSig:
		return &authDiag{Cause: CauseSigNotEncoded,
			Expected: "sig URL-encoded ('+' as %2B, '/' as %2F, '=' as %3D)",
			Received: "sig=" + redactSecret(t.Sig),
			Message:  "the signature is right but not URL-encoded: a raw '+' in sig reads as a space"}
	}
	return &authDiag{Cause: CauseWrongKey, Message: "signature verified only on re-check"}
}

func keyKind(c candidate) string {
	if c.who.group != nil {
		return "device key derived from the group key"
	}
	return "primary or secondary key"
}

// hexCase rewrites every %xx escape in s with upper or lower case hex.
func hexCase(s string, upper bool) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			c := b[j]
			if upper && c >= 'a' && c <= 'f' {
				b[j] = c - 'a' + 'A'
			} else if !upper && c >= 'A' && c <= 'F' {
				b[j] = c - 'A' + 'a'
			}
		}
		i += 2
	}
	return string(b)
}

// clip shortens s for messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
