package sim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file is the board's own key derivation and SAS signing. It does not
// share code with the Go reference on purpose: the simulated board is a
// device under test and must be able to differ from the reference.

const (
	dialectDefault      = "default"
	dialectAzureSDKForC = "azure-sdk-for-c"
	dialectAzureIoTSDKC = "azure-iot-sdk-c"
)

// Dialects returns the SAS dialects a simulated board's firmware can use.
func Dialects() []string {
	return []string{dialectDefault, dialectAzureSDKForC, dialectAzureIoTSDKC}
}

func validDialect(d string) bool {
	for _, x := range Dialects() {
		if x == d {
			return true
		}
	}
	return false
}

// defaultPolicy is the skn the firmware sends when the caller does not choose:
// azure-sdk-for-c samples pass an empty key name (no skn); the legacy C SDK
// uses KEY_NAME_VALUE "registration" (provisioning_client/src/prov_transport_http_client.c);
// the raw-HTTPS how-to (MicrosoftDocs iot-dps-https-sym-key-support.md) uses "registration".
func defaultPolicy(dialect string) string {
	if dialect == dialectAzureSDKForC {
		return ""
	}
	return "registration"
}

const hexDigitsUpper = "0123456789ABCDEF"
const hexDigitsLower = "0123456789abcdef"

// urlencUpper keeps the RFC 3986 unreserved characters and writes every other
// byte as %XX in uppercase (azure-sdk-for-c sdk/src/azure/core/az_span.c
// _az_span_url_should_encode; Python urllib.parse.quote(safe="")).
func urlencUpper(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnumByte(c) || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigitsUpper[c>>4])
		b.WriteByte(hexDigitsUpper[c&0x0f])
	}
	return b.String()
}

// urlencLower is URL_EncodeString of azure-c-shared-utility src/urlencode.c:
// it keeps ! ( ) * - . _ and alphanumerics, writes other ASCII bytes as %xx in
// lowercase, and treats a byte >= 0x80 as a Latin-1 character written in its
// two-byte UTF-8 form.
func urlencLower(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnumByte(c) || strings.IndexByte("!()*-._", c) >= 0:
			b.WriteByte(c)
		case c < 0x80:
			b.WriteByte('%')
			b.WriteByte(hexDigitsLower[c>>4])
			b.WriteByte(hexDigitsLower[c&0x0f])
		default:
			// U+0080..U+00FF in UTF-8: 0xC2/0xC3 then 0x80 | (c & 0x3F).
			lead := byte(0xc2)
			if c >= 0xc0 {
				lead = 0xc3
			}
			cont := 0x80 | c&0x3f
			for _, x := range []byte{lead, cont} {
				b.WriteByte('%')
				b.WriteByte(hexDigitsLower[x>>4])
				b.WriteByte(hexDigitsLower[x&0x0f])
			}
		}
	}
	return b.String()
}

func isAlnumByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// urlenc is the dialect's URL encoder, used for the pieces of sr and for sig.
func urlenc(dialect, s string) string {
	if dialect == dialectAzureIoTSDKC {
		return urlencLower(s)
	}
	return urlencUpper(s)
}

// encodeResource is the sr value for an id scope and a registration id.
func encodeResource(dialect, scope, regID string) string {
	if dialect == dialectAzureSDKForC {
		// az_iot_provisioning_client_sas.c: literal lowercase separator.
		return urlencUpper(scope) + "%2fregistrations%2f" + urlencUpper(regID)
	}
	return urlenc(dialect, scope+"/registrations/"+regID)
}

// decodeKey decodes a standard base64 key.
func decodeKey(key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("key is empty")
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("key decodes to no bytes")
	}
	return b, nil
}

func hmacB64(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// validRegID applies the DPS registration id rules: 1-128 characters,
// alphanumerics and - . _ :, the last one alphanumeric or '-'
// (MicrosoftDocs azure-docs iot-dps-https-sym-key-support.md).
func validRegID(id string) error {
	if id == "" {
		return errors.New("registration id is empty")
	}
	if len(id) > 128 {
		return fmt.Errorf("registration id is %d characters, at most 128 allowed", len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnumByte(c) && c != '-' && c != '.' && c != '_' && c != ':' {
			return fmt.Errorf("registration id: character %q at position %d is not allowed", c, i+1)
		}
	}
	if last := id[len(id)-1]; !isAlnumByte(last) && last != '-' {
		return errors.New("registration id must end with a letter, digit or '-'")
	}
	return nil
}

func validScope(s string) error {
	if s == "" {
		return errors.New("id scope is empty")
	}
	if len(s) > 64 {
		return errors.New("id scope is longer than 64 characters")
	}
	for i := 0; i < len(s); i++ {
		if !isAlnumByte(s[i]) {
			return fmt.Errorf("id scope: character %q at position %d is not allowed", s[i], i+1)
		}
	}
	return nil
}

// sasParts is a token the board built, with all its pieces.
type sasParts struct {
	sr, sts, sig string
	se           int64
	token        string
}

// buildToken writes "SharedAccessSignature sr=..&sig=..&se=..[&skn=..]".
func buildToken(sr, sigField string, se int64, skn string) string {
	t := "SharedAccessSignature sr=" + sr + "&sig=" + sigField + "&se=" + strconv.FormatInt(se, 10)
	if skn != "" {
		t += "&skn=" + skn
	}
	return t
}
