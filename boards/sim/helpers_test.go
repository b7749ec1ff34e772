package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

// client is a minimal host for tests: a real go.bug.st/serial port on the
// board's symlink, protocol framing, its own deadlines.
type client struct {
	t      testing.TB
	port   serial.Port
	r      *protocol.Reader
	seq    uint16
	logs   []string
	events []*protocol.Frame
	errs   []*protocol.FrameError
	stale  []*protocol.Frame
}

// readErr turns a read error into an error the test can inspect.
type portReader struct{ p serial.Port }

func (r portReader) Read(b []byte) (int, error) { return r.p.Read(b) }

func openClient(t testing.TB, path string) *client {
	t.Helper()
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatalf("set read timeout: %v", err)
	}
	c := &client{t: t, port: p, r: protocol.NewReader(portReader{p}, 0)}
	t.Cleanup(func() { c.port.Close() })
	return c
}

var errDeadline = errors.New("test deadline passed")

// next returns the next item before the deadline.
func (c *client) next(deadline time.Time) (protocol.Item, error) {
	for {
		it, err := c.r.Next()
		if errors.Is(err, protocol.ErrNoData) {
			if time.Now().After(deadline) {
				return it, errDeadline
			}
			continue
		}
		if err != nil {
			return it, err
		}
		switch {
		case it.Log != nil:
			c.logs = append(c.logs, string(it.Log))
		case it.Err != nil:
			c.errs = append(c.errs, it.Err)
		case it.Frame != nil && it.Frame.Kind == protocol.KindEvent:
			c.events = append(c.events, it.Frame)
		}
		return it, nil
	}
}

// waitEvent waits for the event name and returns it.
func (c *client) waitEvent(name string, d time.Duration) *protocol.Frame {
	c.t.Helper()
	f, err := c.tryWaitEvent(name, d)
	if err != nil {
		c.t.Fatalf("waiting for %s: %v (logs: %q)", name, err, tail(c.logs, 5))
	}
	return f
}

func (c *client) tryWaitEvent(name string, d time.Duration) (*protocol.Frame, error) {
	dl := time.Now().Add(d)
	for {
		it, err := c.next(dl)
		if err != nil {
			return nil, err
		}
		if it.Frame != nil && it.Frame.Kind == protocol.KindEvent && it.Frame.Verb == name {
			return it.Frame, nil
		}
	}
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (c *client) send(verb string, args ...protocol.Arg) uint16 {
	c.t.Helper()
	c.seq++
	if c.seq == 0 {
		c.seq = 1
	}
	b, err := protocol.Encode(protocol.NewRequest(c.seq, verb, args...), 0)
	if err != nil {
		c.t.Fatalf("encode %s: %v", verb, err)
	}
	if _, err := c.port.Write(b); err != nil {
		c.t.Fatalf("write %s: %v", verb, err)
	}
	return c.seq
}

// response waits for the answer to seq. It returns the frame (OK or ERR),
// or an error: a rejected frame, a READY (reboot) or the deadline.
func (c *client) response(seq uint16, d time.Duration) (*protocol.Frame, error) {
	dl := time.Now().Add(d)
	for {
		it, err := c.next(dl)
		if err != nil {
			return nil, err
		}
		switch {
		case it.Err != nil:
			return nil, it.Err
		case it.Frame == nil:
		case it.Frame.Kind == protocol.KindEvent:
			if it.Frame.Verb == protocol.EventReady {
				return it.Frame, errReboot
			}
		case it.Frame.Seq != seq:
			c.stale = append(c.stale, it.Frame)
		default:
			return it.Frame, nil
		}
	}
}

var errReboot = errors.New("board rebooted")

// call sends a request and returns its answer (OK or ERR), failing the test
// on anything else.
func (c *client) call(verb string, args ...protocol.Arg) *protocol.Frame {
	c.t.Helper()
	seq := c.send(verb, args...)
	f, err := c.response(seq, 10*time.Second)
	if err != nil {
		c.t.Fatalf("%s: %v", verb, err)
	}
	return f
}

// ok calls and requires an OK answer.
func (c *client) ok(verb string, args ...protocol.Arg) *protocol.Frame {
	c.t.Helper()
	f := c.call(verb, args...)
	if f.Kind != protocol.KindOK {
		c.t.Fatalf("%s: want OK, got %s", verb, f.Redacted())
	}
	return f
}

// result returns result k, fetching it with BLOB.GET when it came as k.blob.
func (c *client) result(f *protocol.Frame, k string) []byte {
	c.t.Helper()
	if v, ok := f.Get(k); ok {
		return v
	}
	name := f.String(k + ".blob")
	if name == "" {
		c.t.Fatalf("%s: no result %q in %s", f.Verb, k, f.Redacted())
	}
	n, err := f.Int(k + ".len")
	if err != nil {
		c.t.Fatal(err)
	}
	var out []byte
	for int64(len(out)) < n {
		g := c.ok(protocol.VerbBlobGet, protocol.String("name", name), protocol.Int("off", int64(len(out))))
		d, _ := g.Get("data")
		if len(d) == 0 {
			c.t.Fatalf("BLOB.GET %s returned no data at %d of %d", name, len(out), n)
		}
		out = append(out, d...)
	}
	return out
}

// putBlob stores data in blob name in pieces.
func (c *client) putBlob(name string, data []byte, piece int) {
	c.t.Helper()
	for off := 0; off == 0 || off < len(data); off += piece {
		end := min(off+piece, len(data))
		c.ok(protocol.VerbBlobPut, protocol.String("name", name), protocol.Int("off", int64(off)), protocol.Bytes("data", data[off:end]))
	}
}

func (c *client) hello() *protocol.Frame {
	c.t.Helper()
	return c.ok(protocol.VerbHello, protocol.Int("proto", 1), protocol.Int("max", 4096))
}

func (c *client) allLogs() string { return strings.Join(c.logs, "\n") }

// startBoard starts a board for a test and closes it at the end.
func startBoard(t testing.TB, cfg Config) *Board {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sim-t"
	}
	if cfg.LinkDir == "" {
		cfg.LinkDir = t.TempDir()
	}
	cfg.Logf = t.Logf
	b, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

// boot starts a board, opens its port and waits for READY.
func boot(t testing.TB, cfg Config) (*Board, *client) {
	t.Helper()
	b := startBoard(t, cfg)
	c := openClient(t, b.Link())
	c.waitEvent(protocol.EventReady, 10*time.Second)
	return b, c
}

func hasFault(b *Board, name string) bool {
	for _, f := range b.FaultLog() {
		if f.Fault == name {
			return true
		}
	}
	return false
}

func mustContain(t testing.TB, hay, needle string) {
	t.Helper()
	if !strings.Contains(hay, needle) {
		t.Fatalf("output lacks %q:\n%s", needle, hay)
	}
}

var _ = bytes.Equal
var _ = fmt.Sprint

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
