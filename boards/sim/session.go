package sim

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// session is the firmware's RAM state for one boot: lost on every reset.
type session struct {
	b        *Board
	gen      uint64
	start    time.Time // power-on of this boot
	bootDone time.Time
	bootMS   int // uptime in ms the boot log reached

	clockSet  bool
	clockAt   time.Time // when TIME.SET ran
	clockUnix float64   // the clock at clockAt

	blobs map[string][]byte

	dpsHost    string
	dpsPort    int
	apiVersion string
	roots      *x509.CertPool
	certs      int
	// tlsCache keeps TLS sessions for resumption across DPS.REGISTER calls
	// until the next boot, as an mbedTLS client with session tickets does.
	tlsCache tls.ClientSessionCache
	caPEM    string // the trust anchor tlsCache's sessions were made under
}

func newSession(b *Board, gen uint64) *session {
	return &session{
		b:          b,
		gen:        gen,
		start:      time.Now(),
		blobs:      map[string][]byte{},
		dpsHost:    defaultDPSHost,
		dpsPort:    443,
		apiVersion: defaultAPIVersion,
		tlsCache:   tls.NewLRUClientSessionCache(4),
	}
}

// uptime is the time since boot as the board's esp_timer sees it.
func (s *session) uptime() time.Duration {
	if s.bootDone.IsZero() {
		return time.Since(s.start)
	}
	return time.Duration(s.bootMS)*time.Millisecond + time.Since(s.bootDone)
}

// now is the board's clock in unix seconds: the uptime until TIME.SET (an
// ESP32 without SNTP starts at 1970), then what TIME.SET set plus elapsed time.
func (s *session) now() int64 {
	if !s.clockSet {
		return int64(s.uptime() / time.Second)
	}
	return int64(s.clockUnix + time.Since(s.clockAt).Seconds())
}

// logLine formats an ESP-IDF log line: "I (1234) tag: message".
func (s *session) logLine(level byte, tag, msg string) string {
	return fmt.Sprintf("%c (%d) %s: %s\r\n", level, s.uptime().Milliseconds(), tag, msg)
}
