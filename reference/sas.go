package reference

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// TokenPrefix starts every SAS token ("SharedAccessSignature sr=...").
const TokenPrefix = "SharedAccessSignature "

// SASParams are the inputs of NewSAS.
type SASParams struct {
	Dialect        Dialect // "" = DialectDefault
	IDScope        string
	RegistrationID string
	// Resource is a raw (decoded) resource such as "scope/registrations/id"
	// or an IoT Hub resource. When set it is used instead of IDScope and
	// RegistrationID and encoded whole with Dialect.Encode.
	Resource string
	Key      string // base64 key used for signing
	Expiry   int64  // unix seconds
	KeyName  string // "" = no skn field; see Dialect.DefaultKeyName
}

// SAS is a built token with all its parts.
type SAS struct {
	Dialect         Dialect
	Resource        string // decoded resource
	EncodedResource string // sr as sent
	StringToSign    string // EncodedResource + "\n" + expiry
	Signature       string // base64, not URL-encoded
	Token           string // "SharedAccessSignature sr=..&sig=..&se=..[&skn=..]"
	Expiry          int64
	KeyName         string
}

// NewSAS builds a DPS SAS token in the dialect p.Dialect. The string to sign
// is the encoded resource exactly as it appears in sr, "\n", and the expiry in
// decimal; the signature is HMAC-SHA256 with the base64-decoded key
// (Azure/azure-sdk-for-c sdk/src/azure/iot/az_iot_provisioning_client_sas.c,
// Azure/azure-iot-sdk-python azure-iot-device/azure/iot/device/common/auth/sastoken.py).
func NewSAS(p SASParams) (SAS, error) {
	d := p.Dialect.orDefault()
	if !d.valid() {
		return SAS{}, fmt.Errorf("sas: unknown dialect %q", p.Dialect)
	}
	key, err := DecodeKey(p.Key)
	if err != nil {
		return SAS{}, fmt.Errorf("sas: %w", err)
	}
	if p.Expiry <= 0 {
		return SAS{}, fmt.Errorf("sas: expiry %d is not a positive unix time", p.Expiry)
	}
	var raw, enc string
	if p.Resource != "" {
		if p.IDScope != "" || p.RegistrationID != "" {
			return SAS{}, errors.New("sas: give either a resource or an id scope and a registration id, not both")
		}
		raw, enc = p.Resource, d.Encode(p.Resource)
	} else {
		if err := ValidateIDScope(p.IDScope); err != nil {
			return SAS{}, fmt.Errorf("sas: %w", err)
		}
		if err := ValidateRegistrationID(p.RegistrationID); err != nil {
			return SAS{}, fmt.Errorf("sas: %w", err)
		}
		raw, enc = RawResource(p.IDScope, p.RegistrationID), d.Resource(p.IDScope, p.RegistrationID)
	}
	sts := StringToSign(enc, p.Expiry)
	sig := signBytes(key, sts)
	return SAS{
		Dialect:         d,
		Resource:        raw,
		EncodedResource: enc,
		StringToSign:    sts,
		Signature:       sig,
		Token:           FormatToken(d, enc, sig, p.Expiry, p.KeyName),
		Expiry:          p.Expiry,
		KeyName:         p.KeyName,
	}, nil
}

// ValidateIDScope checks that an id scope is usable in a resource and a URL
// path: not empty, at most 64 characters, letters and digits only (DPS id
// scopes look like "0ne00000A0A").
func ValidateIDScope(s string) error {
	if s == "" {
		return errors.New("id scope is empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("id scope is %d characters long, the limit here is 64", len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return fmt.Errorf("id scope %q: %s at position %d is not allowed (letters and digits only)", s, describeByte(s, i), i+1)
		}
	}
	return nil
}

// StringToSign is encodedResource + "\n" + decimal expiry.
func StringToSign(encodedResource string, expiry int64) string {
	return encodedResource + "\n" + strconv.FormatInt(expiry, 10)
}

// FormatToken writes a token from its parts in the dialect d: fields in the
// order sr, sig, se, [skn]; sig encoded with d.Encode; skn written as given and
// left out when keyName is "" (azure-sdk-for-c az_iot_provisioning_client_sas_get_password;
// azure-iot-sdk-c prov_auth_construct_sas_token "sr=%s&sig=%s&se=%s&skn=%s").
func FormatToken(d Dialect, encodedResource, signature string, expiry int64, keyName string) string {
	var b strings.Builder
	b.Grow(len(TokenPrefix) + len(encodedResource) + len(signature)*3/2 + 48)
	b.WriteString(TokenPrefix)
	b.WriteString("sr=")
	b.WriteString(encodedResource)
	b.WriteString("&sig=")
	b.WriteString(d.Encode(signature))
	b.WriteString("&se=")
	b.WriteString(strconv.FormatInt(expiry, 10))
	if keyName != "" {
		b.WriteString("&skn=")
		b.WriteString(keyName)
	}
	return b.String()
}

// Token is a parsed SAS token. Values are kept as they appear in the token.
type Token struct {
	SR, Sig, SE, SKN string // raw values as they appear in the token (not decoded)
	HasSKN           bool
	Expiry           int64    // parsed se
	Fields           []string // field names in order of appearance
	Raw              string   // the token as given
	HasPrefix        bool     // it started with "SharedAccessSignature "
}

// ParseToken parses a SAS token, with or without the "SharedAccessSignature "
// prefix, fields in any order. sr, sig and se are required; skn is optional;
// unknown or repeated fields are errors.
func ParseToken(s string) (Token, error) {
	t := Token{Raw: s}
	body := s
	if strings.HasPrefix(s, TokenPrefix) {
		body, t.HasPrefix = s[len(TokenPrefix):], true
	} else if i := strings.IndexByte(s, ' '); i >= 0 {
		return Token{}, fmt.Errorf("token: unexpected %q before the fields (want %q)", s[:i+1], TokenPrefix)
	}
	if body == "" {
		return Token{}, errors.New("token: no fields")
	}
	for _, f := range strings.Split(body, "&") {
		name, value, ok := strings.Cut(f, "=")
		if !ok {
			return Token{}, fmt.Errorf("token: field %q has no '='", f)
		}
		var dst *string
		switch name {
		case "sr":
			dst = &t.SR
		case "sig":
			dst = &t.Sig
		case "se":
			dst = &t.SE
		case "skn":
			dst = &t.SKN
			t.HasSKN = true
		default:
			return Token{}, fmt.Errorf("token: unknown field %q", name)
		}
		for _, seen := range t.Fields {
			if seen == name {
				return Token{}, fmt.Errorf("token: field %q appears twice", name)
			}
		}
		t.Fields = append(t.Fields, name)
		*dst = value
	}
	for _, want := range []string{"sr", "sig", "se"} {
		if !t.has(want) {
			return Token{}, fmt.Errorf("token: field %q is missing", want)
		}
	}
	if t.SR == "" || t.Sig == "" {
		return Token{}, errors.New("token: sr and sig must not be empty")
	}
	for i := 0; i < len(t.SE); i++ {
		if t.SE[i] < '0' || t.SE[i] > '9' {
			return Token{}, fmt.Errorf("token: se %q is not a decimal unix time", t.SE)
		}
	}
	e, err := strconv.ParseInt(t.SE, 10, 64)
	if err != nil {
		return Token{}, fmt.Errorf("token: se %q is not a decimal unix time", t.SE)
	}
	t.Expiry = e
	return t, nil
}

func (t Token) has(name string) bool {
	for _, f := range t.Fields {
		if f == name {
			return true
		}
	}
	return false
}

// DecodedResource percent-decodes sr ('+' stays '+').
func (t Token) DecodedResource() (string, error) {
	r, err := url.PathUnescape(t.SR)
	if err != nil {
		return "", fmt.Errorf("token: sr: %w", err)
	}
	return r, nil
}

// DecodedSignature percent-decodes sig ('+' stays '+') into the base64 signature.
func (t Token) DecodedSignature() (string, error) {
	s, err := url.PathUnescape(t.Sig)
	if err != nil {
		return "", fmt.Errorf("token: sig: %w", err)
	}
	return s, nil
}

// Verify reports whether the signature is the HMAC-SHA256, with the
// base64-decoded key, of sr exactly as sent + "\n" + se. The comparison is
// constant-time. A key that is not base64 never verifies.
func (t Token) Verify(key string) bool {
	k, err := DecodeKey(key)
	if err != nil {
		return false
	}
	s, err := t.DecodedSignature()
	if err != nil {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return false
	}
	return hmac.Equal(got, macBytes(k, t.SR+"\n"+t.SE))
}

// MatchDialects returns the dialects whose formatting of the token's decoded
// resource, decoded signature, se and skn reproduces the token byte for byte
// (after the "SharedAccessSignature " prefix, whose absence ParseToken
// records in HasPrefix). For DialectAzureSDKForC a DPS resource
// "scope/registrations/id" is written as that SDK writes it, with the literal
// "%2fregistrations%2f".
func MatchDialects(t Token) []Dialect {
	res, err := t.DecodedResource()
	if err != nil {
		return nil
	}
	sig, err := t.DecodedSignature()
	if err != nil {
		return nil
	}
	body := strings.TrimPrefix(t.Raw, TokenPrefix)
	var out []Dialect
	for _, d := range Dialects() {
		for _, enc := range d.resourceForms(res) {
			if strings.TrimPrefix(FormatToken(d, enc, sig, t.Expiry, t.SKN), TokenPrefix) == body {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// resourceForms lists the ways dialect d writes the decoded resource res.
func (d Dialect) resourceForms(res string) []string {
	if d.orDefault() != DialectAzureSDKForC {
		return []string{d.Encode(res)}
	}
	const sep = "/registrations/"
	var forms []string
	for i := 0; ; {
		j := strings.Index(res[i:], sep)
		if j < 0 {
			break
		}
		at := i + j
		forms = append(forms, d.Resource(res[:at], res[at+len(sep):]))
		i = at + 1
	}
	if len(forms) == 0 {
		forms = append(forms, d.Encode(res))
	}
	return forms
}
