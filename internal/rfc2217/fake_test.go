package rfc2217

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeServer is a minimal RFC 2217 server on loopback. It accepts one
// connection, sends a greeting like ser2net 4.3's, records every byte the
// client sends, decodes the client's data and subnegotiations with its own
// parser, and answers COM-PORT subnegotiations with code+100.
type fakeServer struct {
	t  *testing.T
	ln net.Listener

	cfg fakeConfig

	mu     sync.Mutex
	conn   net.Conn
	raw    []byte   // everything received from the client
	data   []byte   // decoded data bytes
	subs   [][]byte // decoded subnegotiations (option byte first)
	notify chan struct{}

	wmu  sync.Mutex
	done chan struct{}
}

type fakeConfig struct {
	greeting        []byte // nil = ser2netGreeting
	noControlAnswer bool   // do not answer SET-CONTROL (ser2net on a pty)
	flipControl     bool   // answer SET-CONTROL DTR/RTS with the opposite state
	echo            bool   // send decoded data back
}

// ser2netGreeting is what ser2net 4.3.11 sends on connect (observed), plus a
// DO TERMINAL-TYPE the client must refuse, and a NOTIFY-MODEMSTATE with CTS
// and DSR set.
var ser2netGreeting = []byte{
	iac, will, optSGA, iac, do, optSGA, iac, will, optEcho, iac, dont, optEcho,
	iac, do, optBinary, iac, will, optBinary, iac, do, 24, iac, do, optComPort,
	iac, sb, optComPort, 107, 0x30, iac, se,
}

func newFakeServer(t *testing.T, cfg fakeConfig) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &fakeServer{t: t, ln: ln, cfg: cfg, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.mu.Unlock()
	<-s.done
}

// hangUp shuts down the server's sending side (orderly TCP FIN).
func (s *fakeServer) hangUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conn.(*net.TCPConn); ok {
		_ = c.CloseWrite()
	}
}

func (s *fakeServer) serve() {
	defer close(s.done)
	conn, err := s.ln.Accept()
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	greeting := s.cfg.greeting
	if greeting == nil {
		greeting = ser2netGreeting
	}
	s.send(greeting)
	buf := make([]byte, 4096)
	var st, verb int
	var sub []byte
	for {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return
		}
		s.mu.Lock()
		s.raw = append(s.raw, buf[:n]...)
		var echo, replies []byte
		for _, b := range buf[:n] {
			switch st {
			case 0: // data
				if b == 0xFF {
					st = 1
				} else {
					s.data = append(s.data, b)
					echo = append(echo, b)
				}
			case 1: // IAC
				switch {
				case b == 0xFF:
					s.data = append(s.data, b)
					echo = append(echo, b)
					st = 0
				case b >= 0xFB: // WILL WONT DO DONT
					verb, st = int(b), 2
				case b == 0xFA:
					sub, st = nil, 3
				default:
					st = 0
				}
			case 2:
				_ = verb
				st = 0
			case 3: // SB
				if b == 0xFF {
					st = 4
				} else {
					sub = append(sub, b)
				}
			case 4:
				if b == 0xF0 {
					s.subs = append(s.subs, sub)
					replies = append(replies, s.answer(sub)...)
					st = 0
				} else {
					sub = append(sub, b)
					st = 3
				}
			}
		}
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
		if len(replies) > 0 {
			s.send(replies)
		}
		if s.cfg.echo && len(echo) > 0 {
			s.send(tnEscape(echo))
		}
	}
}

// answer returns the server's reply to a client subnegotiation.
func (s *fakeServer) answer(sub []byte) []byte {
	if len(sub) < 2 || sub[0] != 44 {
		return nil
	}
	code, val := sub[1], sub[2:]
	switch code {
	case 0:
		val = []byte("fake")
	case 5:
		if s.cfg.noControlAnswer {
			return nil
		}
		if s.cfg.flipControl && len(val) == 1 {
			flip := map[byte]byte{8: 9, 9: 8, 11: 12, 12: 11}
			if f, ok := flip[val[0]]; ok {
				val = []byte{f}
			}
		}
	}
	out := []byte{0xFF, 0xFA, 44, code + 100}
	out = append(out, tnEscape(val)...)
	return append(out, 0xFF, 0xF0)
}

// send writes raw bytes (already telnet-encoded) to the client.
func (s *fakeServer) send(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(b)
}

func (s *fakeServer) received() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.raw...)
}

// takeData returns and clears the decoded data received so far.
func (s *fakeServer) takeData() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.data
	s.data = nil
	return d
}

// waitFor waits (up to 5 s) until cond, called with s.mu held, is true.
func (s *fakeServer) waitFor(t fataler, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.notify:
		case <-deadline.C:
			t.Fatalf("fake server: timed out waiting for %s; received % x", what, s.received())
		}
	}
}

// waitRaw waits until the client has sent at least n bytes in total.
func (s *fakeServer) waitRaw(t fataler, n int) []byte {
	t.Helper()
	s.waitFor(t, "client bytes", func() bool { return len(s.raw) >= n })
	return s.received()
}

// fataler is the part of testing.TB and *rapid.T the helpers need.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// tnEscape doubles 0xFF bytes (written independently of the package's escape).
func tnEscape(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte{0xFF}, []byte{0xFF, 0xFF})
}
