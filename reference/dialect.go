package reference

import (
	"fmt"
	"strings"
)

// Dialect names one SDK's way of writing a DPS SAS token. Official SDKs
// disagree on the bytes of a valid token (hex case of percent-encoding, the
// set of characters left unencoded, whether skn is sent); the service verifies
// the HMAC over the sr value exactly as sent, so each dialect is valid, but a
// board must be compared with the dialect its firmware uses.
type Dialect string

const (
	// DialectDefault: uppercase RFC 3986 percent-encoding (unreserved
	// A-Z a-z 0-9 - . _ ~ kept), the resource "scope/registrations/id"
	// encoded whole (so "/" becomes "%2F"), skn=registration by default.
	// Sources: MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md
	// (raw-HTTPS how-to, Python quote_plus/urlencode generator, skn "registration");
	// Azure/azure-iot-sdk-python azure-iot-device/azure/iot/device/common/auth/sastoken.py
	// (urllib.parse.quote(uri, safe="")).
	DialectDefault Dialect = "default"

	// DialectAzureSDKForC: urlenc(scope) + literal lowercase "%2fregistrations%2f"
	// + urlenc(regId), with an uppercase RFC 3986 encoder for the pieces and
	// for the signature; skn only when a key name is given (none by default).
	// Sources: Azure/azure-sdk-for-c sdk/src/azure/iot/az_iot_provisioning_client_sas.c
	// (az_iot_provisioning_client_sas_get_signature / _get_password) and
	// sdk/src/azure/core/az_span.c (_az_span_url_should_encode, upper hex).
	DialectAzureSDKForC Dialect = "azure-sdk-for-c"

	// DialectAzureIoTSDKC: URL_EncodeString of the whole "scope/registrations/id"
	// string with lowercase hex, keeping ! ( ) * - . _ and alphanumerics;
	// skn=registration.
	// Sources: Azure/azure-iot-sdk-c provisioning_client/src/prov_device_ll_client.c
	// (SAS_TOKEN_SCOPE_FMT "%s/registrations/%s" then URL_EncodeString),
	// provisioning_client/src/prov_auth_client.c (prov_auth_construct_sas_token),
	// provisioning_client/src/prov_transport_http_client.c (KEY_NAME_VALUE "registration"),
	// Azure/azure-c-shared-utility src/urlencode.c (IS_PRINTABLE, NIBBLE_TO_STRING lowercase).
	DialectAzureIoTSDKC Dialect = "azure-iot-sdk-c"
)

// Dialects returns every known dialect, DialectDefault first.
func Dialects() []Dialect {
	return []Dialect{DialectDefault, DialectAzureSDKForC, DialectAzureIoTSDKC}
}

// ParseDialect returns the dialect named s; "" means DialectDefault.
func ParseDialect(s string) (Dialect, error) {
	if s == "" {
		return DialectDefault, nil
	}
	for _, d := range Dialects() {
		if string(d) == s {
			return d, nil
		}
	}
	names := make([]string, 0, 3)
	for _, d := range Dialects() {
		names = append(names, string(d))
	}
	return "", fmt.Errorf("unknown SAS dialect %q (want one of %s)", s, strings.Join(names, ", "))
}

// orDefault maps the zero Dialect to DialectDefault.
func (d Dialect) orDefault() Dialect {
	if d == "" {
		return DialectDefault
	}
	return d
}

func (d Dialect) valid() bool {
	switch d.orDefault() {
	case DialectDefault, DialectAzureSDKForC, DialectAzureIoTSDKC:
		return true
	}
	return false
}

// DefaultKeyName is the skn value the dialect sends when the caller does not
// choose one: "registration" for DialectDefault and DialectAzureIoTSDKC, ""
// (no skn field) for DialectAzureSDKForC, whose samples pass an empty key name.
func (d Dialect) DefaultKeyName() string {
	if d.orDefault() == DialectAzureSDKForC {
		return ""
	}
	return "registration"
}

// Encode is the dialect's URL encoder, used for the pieces of sr and for sig.
func (d Dialect) Encode(s string) string {
	if d.orDefault() == DialectAzureIoTSDKC {
		return encodeIoTSDKC(s)
	}
	return encodeRFC3986(s)
}

// Resource returns the encoded resource (the sr value) for an id scope and a
// registration id, exactly as the dialect writes it.
func (d Dialect) Resource(idScope, registrationID string) string {
	switch d.orDefault() {
	case DialectAzureSDKForC:
		// az_iot_provisioning_client_sas.c: the separator is the literal
		// "%2fregistrations%2f" (lowercase), the pieces use the uppercase encoder.
		return encodeRFC3986(idScope) + "%2fregistrations%2f" + encodeRFC3986(registrationID)
	default:
		return d.Encode(RawResource(idScope, registrationID))
	}
}

// RawResource is the decoded DPS resource "{idScope}/registrations/{registrationId}".
func RawResource(idScope, registrationID string) string {
	return idScope + "/registrations/" + registrationID
}

const upperHex = "0123456789ABCDEF"
const lowerHex = "0123456789abcdef"

// rfc3986Unreserved reports whether c is kept by the RFC 3986 encoder
// (A-Z a-z 0-9 - . _ ~), as in azure-sdk-for-c _az_span_url_should_encode and
// Python urllib.parse.quote(safe="").
func rfc3986Unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// encodeRFC3986 percent-encodes every byte outside the RFC 3986 unreserved set
// with uppercase hex.
func encodeRFC3986(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !rfc3986Unreserved(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if rfc3986Unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// iotSDKCPrintable is IS_PRINTABLE from azure-c-shared-utility src/urlencode.c:
// ! ( ) * - . 0-9 A-Z _ a-z are kept as they are.
func iotSDKCPrintable(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '!' || c == '(' || c == ')' || c == '*' || c == '-' || c == '.' || c == '_'
}

// encodeIoTSDKC reproduces URL_PrintableChar from azure-c-shared-utility
// src/urlencode.c: lowercase hex; a byte >= 0x80 is taken as a Latin-1 code
// point and written as its two-byte UTF-8 form ("%c2%xx" or "%c3%xx"), so
// non-ASCII input does not round-trip through a percent-decoder.
func encodeIoTSDKC(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if iotSDKCPrintable(c) {
			b.WriteByte(c)
			continue
		}
		hi, lo := c>>4, c&15
		if c < 0x80 {
			b.WriteByte('%')
			b.WriteByte(lowerHex[hi])
			b.WriteByte(lowerHex[lo])
			continue
		}
		if hi >= 0x0C {
			hi -= 0x04
		}
		if c < 0xC0 {
			b.WriteString("%c2%")
		} else {
			b.WriteString("%c3%")
		}
		b.WriteByte(lowerHex[hi])
		b.WriteByte(lowerHex[lo])
	}
	return b.String()
}
