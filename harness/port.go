package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

// DefaultReadTimeout is the read timeout OpenPort sets: short enough for a
// reader goroutine to notice Close and context cancellation promptly.
const DefaultReadTimeout = 50 * time.Millisecond

// ErrReadTimeout is returned by the Read of a port from OpenPort when no byte
// arrived within the read timeout. It reports Timeout() == true, so
// os.IsTimeout-style checks work.
var ErrReadTimeout error = readTimeoutError{}

type readTimeoutError struct{}

func (readTimeoutError) Error() string   { return "serial read timed out" }
func (readTimeoutError) Timeout() bool   { return true }
func (readTimeoutError) Temporary() bool { return true }

// timeoutPort wraps a go.bug.st/serial port so that Read reports its
// timeout as ErrReadTimeout instead of (0, nil): bugst/go-serial returns
// (0, nil) on timeout (serial_unix.go Read; bugst/go-serial#148), which makes
// io.ReadFull and bufio loop forever. Its Write writes all of b: bugst's
// Write is one write(2), which returns a short count without an error when
// a signal (the Go runtime preempts goroutines with SIGURG) interrupts it
// while the driver's buffer is full, and the rest of a frame would be lost.
// This is the one place that wraps it.
type timeoutPort struct {
	serial.Port
}

func (p timeoutPort) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := p.Port.Write(b[done:])
		done += n
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.ErrShortWrite
		}
	}
	return done, nil
}

func (p timeoutPort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := p.Port.Read(b)
	if n == 0 && err == nil {
		return 0, ErrReadTimeout
	}
	return n, err
}

// OpenPort opens a serial port (a device path or a symlink to one) at baud
// with 8N1, no flow control, and a read timeout of DefaultReadTimeout. The
// port's Read returns ErrReadTimeout when the timeout expires with no data.
//
// The modem lines are left as the driver sets them (InitialStatusBits nil):
// setting them at open fails on ptys with ENOTTY (../shared/hil/FACTS.md §5),
// and on Linux DTR and RTS both go asserted, which the ESP32 auto-reset
// circuit ignores (both asserted together = no reset).
//
// A path "rfc2217://host:port[?ign_set_control]" is a port exported over
// RFC 2217 (e.g. by ser2net with "accepter: telnet(rfc2217),tcp,PORT"); see
// OpenPortContext.
func OpenPort(path string, baud int) (serial.Port, error) {
	return OpenPortContext(context.Background(), path, baud)
}

// OpenPortContext is OpenPort with a context that bounds the connection to
// a remote (RFC 2217) port: the TCP connect, the telnet negotiation and the
// line settings (at most rfc2217.DefaultDialTimeout). It has no effect on a
// local port or on the port once open. A remote port has the same read
// timeout and (0, nil) handling as a local one; its modem lines work only
// when the server answers SET-CONTROL (ser2net on a pty does not, and
// SetDTR/SetRTS then fail with an error wrapping rfc2217.ErrNoAnswer, which
// the reset code treats as "no modem lines").
func OpenPortContext(ctx context.Context, path string, baud int) (serial.Port, error) {
	if baud <= 0 {
		baud = 115200
	}
	var p serial.Port
	if rfc2217.IsName(path) {
		rp, err := rfc2217.Dial(ctx, path, rfc2217.Options{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		p = rp
	} else {
		lp, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		p = lp
	}
	if err := p.SetReadTimeout(DefaultReadTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("open %s: set read timeout: %w", path, err)
	}
	return timeoutPort{p}, nil
}

// IsPortGone reports whether err from a port's Read or Write means the port
// is closed or the device behind it vanished (unplugged, re-enumerating, pty
// master closed, RFC 2217 server gone): go.bug.st/serial's *PortError with
// code PortClosed, EIO, ENXIO, ENODEV, EOF, and for remote ports
// rfc2217.ErrClosed, net.ErrClosed, ECONNRESET, ECONNABORTED and EPIPE.
func IsPortGone(err error) bool {
	if err == nil {
		return false
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed {
		return true
	}
	for _, target := range []error{io.EOF, syscall.EIO, syscall.ENXIO, syscall.ENODEV,
		rfc2217.ErrClosed, net.ErrClosed, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	if errors.Is(err, protocol.ErrNoData) || errors.Is(err, ErrReadTimeout) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// PingLoop sends n PING requests with the given payload over a bare port
// (no session: no handshake, retries or reader goroutine) and waits for each
// answer; it is the baseline that session overhead is measured against. The
// port should come from OpenPort. It fails on the first lost, bad or
// mismatched answer.
func PingLoop(ctx context.Context, port io.ReadWriter, n int, payload []byte) error {
	enc := protocol.NewEncoder(port, protocol.DefaultMaxFrame)
	rd := protocol.NewReader(port, protocol.DefaultMaxFrame)
	var seq uint16
	for i := 0; i < n; i++ {
		seq++
		if seq == 0 {
			seq = 1
		}
		if err := enc.Encode(protocol.NewRequest(seq, protocol.VerbPing, protocol.Bytes("data", payload))); err != nil {
			return fmt.Errorf("ping %d: %w", i, err)
		}
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("ping %d: %w", i, err)
			}
			it, err := rd.Next()
			if err != nil {
				if isTimeout(err) {
					continue
				}
				return fmt.Errorf("ping %d: %w", i, err)
			}
			if it.Frame == nil || !it.Frame.Kind.IsResponse() || it.Frame.Seq != seq {
				continue
			}
			if err := it.Frame.Err(); err != nil {
				return fmt.Errorf("ping %d: %w", i, err)
			}
			if it.Frame.String("data") != string(payload) {
				return fmt.Errorf("ping %d: echo differs", i)
			}
			break
		}
	}
	return nil
}
