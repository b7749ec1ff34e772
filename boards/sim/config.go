package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Config describes one simulated board.
type Config struct {
	// Name names the board ("sim-1") and its symlink <LinkDir>/<Name>.
	Name string
	// LinkDir holds the stable symlink <LinkDir>/<Name> -> /dev/pts/N and the
	// control socket <LinkDir>/<Name>.ctl; "" = a temporary directory the
	// Board owns and removes on Close.
	LinkDir string
	// Dialect is the SAS dialect the firmware emits: "default" (or ""),
	// "azure-sdk-for-c" or "azure-iot-sdk-c".
	Dialect string
	// Bugs are seeded firmware bugs by name (see Bugs).
	Bugs []string
	// Faults is a fault spec (see ParseFaults), e.g. "noise=0.3,corrupt=0.02".
	Faults string
	// Seed makes noise, boot output and faults deterministic.
	Seed int64
	// Baud paces the board's output at Baud/10 bytes per second; 0 = unpaced.
	Baud int
	// Identity; defaults are derived from Name and Seed.
	MAC, Firmware, FirmwareVersion, BoardName, Chip string
	// Logf receives one line per fault the simulator injects (also kept in
	// Board.FaultLog) and other notable events. It is called from the
	// board's goroutines and must be safe for concurrent use. nil = discard.
	Logf func(format string, args ...any)
}

// Identity defaults.
const (
	DefaultFirmware        = "hiltest-sim"
	DefaultFirmwareVersion = "1.0.0"
	DefaultBoardName       = "sim-esp32"
	DefaultChip            = "ESP32"
	// MaxFrame is the board's maximum frame length, announced in HELLO.
	MaxFrame = 4096
	// BlobMax is the capacity of each blob in bytes, announced in HELLO.
	BlobMax = 65536
	// MaxBlobs is how many blobs the board holds at once.
	MaxBlobs = 16
)

// normalize fills defaults and checks cfg.
func (c Config) normalize() (Config, error) {
	if c.Name == "" {
		return c, fmt.Errorf("sim: board name is empty")
	}
	if strings.ContainsAny(c.Name, "/\x00") || c.Name == "." || c.Name == ".." {
		return c, fmt.Errorf("sim: board name %q: want a plain file name", c.Name)
	}
	if c.Dialect == "" {
		c.Dialect = dialectDefault
	}
	if !validDialect(c.Dialect) {
		return c, fmt.Errorf("sim: board %s: unknown dialect %q (want one of %s)", c.Name, c.Dialect, strings.Join(Dialects(), ", "))
	}
	for _, b := range c.Bugs {
		if _, ok := LookupBug(b); !ok {
			return c, fmt.Errorf("sim: board %s: unknown bug %q (want one of %s)", c.Name, b, strings.Join(BugNames(), ", "))
		}
	}
	if c.Baud < 0 {
		return c, fmt.Errorf("sim: board %s: negative baud rate %d", c.Name, c.Baud)
	}
	if c.MAC == "" {
		c.MAC = DeriveMAC(c.Name, c.Seed)
	}
	if c.Firmware == "" {
		c.Firmware = DefaultFirmware
	}
	if c.FirmwareVersion == "" {
		c.FirmwareVersion = DefaultFirmwareVersion
	}
	if c.BoardName == "" {
		c.BoardName = DefaultBoardName
	}
	if c.Chip == "" {
		c.Chip = DefaultChip
	}
	return c, nil
}

// DeriveMAC returns the station MAC of a board named name with seed: the
// Espressif OUI 24:0A:C4 and three bytes of SHA-256(name, seed).
func DeriveMAC(name string, seed int64) string {
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(seed))
	h := sha256.Sum256(append([]byte(name+"\x00"), s[:]...))
	return fmt.Sprintf("24:0A:C4:%02X:%02X:%02X", h[0], h[1], h[2])
}

// RegistrationIDFor suggests a DPS registration id for a MAC: "sim-" and the
// MAC's hex digits in lowercase.
func RegistrationIDFor(mac string) string {
	return "sim-" + strings.ToLower(strings.ReplaceAll(mac, ":", ""))
}

// Bug is a seeded firmware bug a board can be built with.
type Bug struct {
	Name, Description string
}

// Names of the seeded bugs.
const (
	BugGroupKeySigning      = "group-key-signing"
	BugDeriveFromBase64Text = "derive-from-base64-text"
	BugSRNotEncoded         = "sr-not-encoded"
	BugSigNotEncoded        = "sig-not-encoded"
	BugMissingSKN           = "missing-skn"
	BugWrongResource        = "wrong-resource"
	BugUnsetClockExpiry     = "unset-clock-expiry"
	BugWrongAPIVersion      = "wrong-api-version"
	BugBodyIDMismatch       = "body-id-mismatch"
	BugIgnoreRetryAfter     = "ignore-retry-after"
	BugTruncateKey64        = "truncate-key-64"
)

// Values the bugs use.
const (
	// WrongScope is the id scope the wrong-resource bug signs for: a sample
	// scope left in the firmware.
	WrongScope = "0ne00000000"
	// WrongAPIVersion is the api-version the wrong-api-version bug sends.
	WrongAPIVersion = "2018-11-01"
	// KeyBuffer is the key buffer size of the truncate-key-64 bug.
	KeyBuffer = 64
	// TightPoll is the polling interval of the ignore-retry-after bug.
	TightPoll = 50 * time.Millisecond
)

var bugList = []Bug{
	{BugGroupKeySigning, "DPS.REQUEST/DPS.REGISTER with group_key sign the token with the group key itself instead of the device key derived from it"},
	{BugDeriveFromBase64Text, "key derivation (DERIVE, and DPS requests given group_key) uses the group key's base64 text as the HMAC key instead of the decoded bytes"},
	{BugSRNotEncoded, "the resource is not URL-encoded: sr and the string-to-sign carry the raw \"scope/registrations/id\""},
	{BugSigNotEncoded, "the signature is put into the token as plain base64, not URL-encoded"},
	{BugMissingSKN, "the token never carries skn, whatever the dialect or policy"},
	{BugWrongResource, "the token's resource uses a hard-coded sample id scope (" + WrongScope + ") instead of the configured one; the request path is right"},
	{BugUnsetClockExpiry, "with ttl, the expiry is computed from the boot clock (uptime, near 1970) even after TIME.SET"},
	{BugWrongAPIVersion, "DPS requests carry api-version=" + WrongAPIVersion + " whatever DPS.CONFIG says"},
	{BugBodyIDMismatch, "the request body's registrationId has a trailing space, so it differs from the path and the token"},
	{BugIgnoreRetryAfter, "DPS.REGISTER polls the operation every 50 ms instead of honouring Retry-After"},
	{BugTruncateKey64, "keys (key, group_key) are copied into a 64-character buffer: a longer base64 key (a 64-byte group key is 88 characters) is truncated to 64"},
}

// Bugs returns the seeded firmware bugs a board can be built with.
func Bugs() []Bug {
	out := make([]Bug, len(bugList))
	copy(out, bugList)
	return out
}

// BugNames returns the names of Bugs, sorted.
func BugNames() []string {
	n := make([]string, 0, len(bugList))
	for _, b := range bugList {
		n = append(n, b.Name)
	}
	sort.Strings(n)
	return n
}

// LookupBug returns the bug named name.
func LookupBug(name string) (Bug, bool) {
	for _, b := range bugList {
		if b.Name == name {
			return b, true
		}
	}
	return Bug{}, false
}
