package reference

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxRegistrationIDLength is the longest registration id DPS accepts
// (MicrosoftDocs/azure-docs articles/iot-dps/iot-dps-https-sym-key-support.md;
// Azure/azure-rest-api-specs .../stable/2021-10-01/device.json DeviceRegistration).
const MaxRegistrationIDLength = 128

// DecodeKey decodes a symmetric key in standard base64 (with padding), the
// form DPS and the portal show. Errors say what is wrong: empty, or which
// character at which position is not base64.
func DecodeKey(key string) ([]byte, error) {
	if key == "" {
		return nil, errors.New("key is empty")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(key)
	if err == nil {
		if len(b) == 0 {
			return nil, errors.New("key is empty")
		}
		return b, nil
	}
	hint := ""
	switch {
	case decodes(base64.RawStdEncoding, key):
		hint = " (the '=' padding is missing)"
	case decodes(base64.URLEncoding, key) || decodes(base64.RawURLEncoding, key):
		hint = " (it is URL-safe base64 with '-' and '_'; DPS keys use '+' and '/')"
	}
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		off := int(ce)
		if off < len(key) {
			return nil, fmt.Errorf("key is not valid base64: %s at position %d of %d%s",
				describeByte(key, off), off+1, len(key), hint)
		}
		return nil, fmt.Errorf("key is not valid base64: length %d is not a multiple of 4%s", len(key), hint)
	}
	return nil, fmt.Errorf("key is not valid base64: %w%s", err, hint)
}

func decodes(enc *base64.Encoding, s string) bool {
	_, err := enc.Strict().DecodeString(s)
	return err == nil
}

// describeByte names the character at byte offset off of s for an error message.
func describeByte(s string, off int) string {
	r, _ := utf8.DecodeRuneInString(s[off:])
	if r == utf8.RuneError || r < 0x20 || r == 0x7f {
		return fmt.Sprintf("byte 0x%02x", s[off])
	}
	return fmt.Sprintf("character %q", r)
}

// ValidateRegistrationID checks a registration id against the DPS rules: 1 to
// 128 characters, only letters, digits and '-', '.', '_', ':', and the last
// one a letter, a digit or '-' (MicrosoftDocs/azure-docs
// articles/iot-dps/iot-dps-https-sym-key-support.md). Registration ids are
// case-insensitive for the service; letters of either case are accepted here.
func ValidateRegistrationID(id string) error {
	if id == "" {
		return errors.New("registration id is empty")
	}
	if len(id) > MaxRegistrationIDLength {
		return fmt.Errorf("registration id is %d characters long, the limit is %d", len(id), MaxRegistrationIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == ':' {
			continue
		}
		return fmt.Errorf("registration id %q: %s at position %d is not allowed (allowed: letters, digits, '-', '.', '_', ':')",
			id, describeByte(id, i), i+1)
	}
	if last := id[len(id)-1]; !isAlnum(last) && last != '-' {
		return fmt.Errorf("registration id %q: the last character %q must be a letter, a digit or '-'", id, last)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

// DeriveDeviceKey derives the device key of a group (symmetric key) enrollment
// member: base64(HMAC-SHA256(base64decode(groupKey), registrationID)).
// Source: MicrosoftDocs/azure-docs articles/iot-dps/how-to-legacy-device-symm-key.md
// ("Derive a device key") and articles/iot-dps/concepts-symmetric-key-attestation.md
// (ComputeDerivedSymmetricKey).
func DeriveDeviceKey(groupKey, registrationID string) (string, error) {
	k, err := DecodeKey(groupKey)
	if err != nil {
		return "", fmt.Errorf("group key: %w", err)
	}
	if err := ValidateRegistrationID(registrationID); err != nil {
		return "", err
	}
	return signBytes(k, registrationID), nil
}

// Sign returns base64(HMAC-SHA256(base64decode(key), message)), the signature
// of every SAS token (Azure/azure-iot-sdk-python
// azure-iot-device/azure/iot/device/common/auth/signing_mechanism.py).
func Sign(key, message string) (string, error) {
	k, err := DecodeKey(key)
	if err != nil {
		return "", err
	}
	return signBytes(k, message), nil
}

func signBytes(key []byte, message string) string {
	return base64.StdEncoding.EncodeToString(macBytes(key, message))
}

func macBytes(key []byte, message string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(message))
	return m.Sum(nil)
}
