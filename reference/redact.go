package reference

import (
	"fmt"
	"strings"
)

// Redact hides a secret (a key or a signature) for logs and reports: it keeps
// the first 4 characters, so two secrets can still be told apart, and the
// length, e.g. "8isr…(88 bytes)". Secrets of 12 bytes or fewer become
// "[redacted]"; the empty string stays empty.
func Redact(secret string) string {
	switch {
	case secret == "":
		return ""
	case len(secret) <= 12:
		return "[redacted]"
	}
	return fmt.Sprintf("%s…(%d bytes)", secret[:4], len(secret))
}

// RedactToken returns a SAS token with the value of its sig field replaced by
// Redact of that value; everything else (sr, se, skn) is kept, since those are
// not secret and are what a reader needs to compare. A string without a sig
// field is returned unchanged.
func RedactToken(token string) string {
	i := 0
	for {
		j := strings.Index(token[i:], "sig=")
		if j < 0 {
			return token
		}
		at := i + j
		if at == 0 || token[at-1] == '&' || token[at-1] == ' ' {
			start := at + len("sig=")
			end := strings.IndexByte(token[start:], '&')
			if end < 0 {
				end = len(token)
			} else {
				end += start
			}
			return token[:start] + Redact(token[start:end]) + token[end:]
		}
		i = at + 1
	}
}
