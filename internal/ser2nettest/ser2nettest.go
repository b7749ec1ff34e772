// Package ser2nettest runs a real ser2net exporting a device over
// telnet(rfc2217) on loopback, for integration tests.
//
// A Server keeps its loopback port across Stop and Start, so a test can
// kill ser2net and bring it back on the same address.
package ser2nettest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long Start waits for ser2net to listen.
const startTimeout = 10 * time.Second

// Binary finds ser2net: $SER2NET if set, else PATH, else /usr/sbin/ser2net
// (where the Debian package ser2net installs it, off a non-root PATH).
// Missing ser2net fails the test, or skips it under -short.
func Binary(tb testing.TB) string {
	tb.Helper()
	candidates := []string{"ser2net", "/usr/sbin/ser2net"}
	if env := os.Getenv("SER2NET"); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if testing.Short() {
		tb.Skipf("ser2net not found (%s): RFC 2217 integration tests need the Debian package ser2net; skipped in -short mode", strings.Join(candidates, ", "))
	}
	tb.Fatalf("ser2net not found (%s): install the Debian package ser2net (apt-get install ser2net) to run the RFC 2217 integration tests, or run with -short", strings.Join(candidates, ", "))
	return ""
}

// Server is one ser2net configuration exporting a device on a fixed
// loopback port. Start and Stop may be called repeatedly; the test's
// Cleanup stops it.
type Server struct {
	tb     testing.TB
	bin    string
	config string
	port   int
	out    *syncBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// New finds ser2net (see Binary), picks a free loopback port and writes a
// configuration exporting device on it. It does not start ser2net.
func New(tb testing.TB, device string) *Server {
	tb.Helper()
	bin := Binary(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pick a free loopback port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		tb.Fatalf("release port %d: %v", port, err)
	}
	// ser2net.yaml(5), 4.3: a connection joins an accepter gensio (telnet
	// with RFC 2217 on TCP) to a connector gensio (the serial device);
	// "local" ignores the modem control lines (CLOCAL); kickolduser lets a
	// new connection replace an old one that ser2net still holds.
	cfg := fmt.Sprintf(`%%YAML 1.1
---
connection: &dut
  accepter: telnet(rfc2217),tcp,127.0.0.1,%d
  connector: serialdev,%s,115200n81,local
  options:
    kickolduser: true
`, port, device)
	path := filepath.Join(tb.TempDir(), "ser2net.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatalf("write ser2net config: %v", err)
	}
	s := &Server{tb: tb, bin: bin, config: path, port: port, out: &syncBuffer{}}
	tb.Cleanup(s.Stop)
	return s
}

// Addr is the server's "127.0.0.1:port"; it stays the same across restarts.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Output is everything ser2net has written so far, for failure messages.
func (s *Server) Output() string { return s.out.String() }

// Start runs ser2net in its own process group and waits until it listens.
// Readiness is read from /proc/net/tcp, not probed with a connection: with
// kickolduser a probe would kick a session that is already connected.
// Start must be called from the test's goroutine.
func (s *Server) Start() {
	s.tb.Helper()
	// -n: foreground, -d: log to stdout, -u: no UUCP lock files.
	cmd := exec.Command(s.bin, "-n", "-d", "-u", "-c", s.config)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start %s: %v", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when Stop kills the group
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for !listening(s.port) {
		select {
		case err := <-exited:
			exited <- err
			s.tb.Fatalf("ser2net exited early (%v); output:\n%s", err, s.out)
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("ser2net not listening on %s within %v; output:\n%s", s.Addr(), startTimeout, s.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills ser2net's process group and waits for it to exit. It does
// nothing if ser2net is not running, so it is safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// listening reports whether a TCP socket listens on port (IPv4 or IPv6),
// from /proc/net/tcp{,6} (proc(5)): "sl local_address rem_address st ...",
// the port in hex after the colon, st 0A = LISTEN.
func listening(port int) bool {
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
				return true
			}
		}
	}
	return false
}

// syncBuffer collects ser2net's stdout and stderr, which exec writes from
// two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
