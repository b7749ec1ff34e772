package ser2nettest

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Bytes the device writes reach a TCP client of the server (after the
// telnet negotiation ser2net sends first); Stop closes the port and Start
// brings it back on the same address.
func TestServerLifecycle(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	s := New(t, slave.Name())
	addr := s.Addr()
	if listening(s.port) {
		t.Fatalf("something listens on %s before Start", addr)
	}

	for round := range 2 {
		s.Start()
		if got := s.Addr(); got != addr {
			t.Fatalf("round %d: Addr = %s, want %s", round, got, addr)
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("round %d: dial %s: %v; output:\n%s", round, addr, err, s.Output())
		}
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// The connection opens the device; write until the client sees it.
		var got []byte
		buf := make([]byte, 1024)
		for !bytes.Contains(got, []byte("hello")) {
			if _, err := master.Write([]byte("hello")); err != nil {
				t.Fatalf("round %d: device write: %v", round, err)
			}
			if err := c.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("round %d: read: %v (got % x)", round, err, got)
			}
			if len(got) > 1<<16 {
				t.Fatalf("round %d: no device bytes in % x", round, got[:64])
			}
		}
		_ = c.Close()

		s.Stop()
		s.Stop() // a second Stop is a no-op
		if listening(s.port) {
			t.Fatalf("round %d: %s still listens after Stop", round, addr)
		}
		if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				_ = c.Close()
			}
			t.Fatalf("round %d: dial after Stop: %v, want connection refused", round, err)
		}
	}
}

func TestBinary(t *testing.T) {
	bin := Binary(t)
	link := filepath.Join(t.TempDir(), "my-ser2net")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, want string
	}{
		{"SER2NET wins over PATH", link, link},
		{"search PATH and /usr/sbin", "", bin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SER2NET", tt.env)
			if got := Binary(t); got != tt.want {
				t.Errorf("Binary = %q, want %q", got, tt.want)
			}
		})
	}
}
