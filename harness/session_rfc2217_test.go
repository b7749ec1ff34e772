package harness

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// ser2netBinary finds ser2net: $SER2NET, PATH, or /usr/sbin/ser2net (where
// the Debian package installs it, off a non-root PATH). Missing ser2net
// fails the test unless -short.
func ser2netBinary(t *testing.T) string {
	t.Helper()
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
		t.Skipf("ser2net not found (%s): the RFC 2217 test needs the Debian package ser2net; skipped in -short mode", strings.Join(candidates, ", "))
	}
	t.Fatalf("ser2net not found (%s): install the Debian package ser2net (apt-get install ser2net), or run with -short", strings.Join(candidates, ", "))
	return ""
}

// syncBuffer collects ser2net's output for failure messages.
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

// ser2net runs a real ser2net exporting a device over telnet(rfc2217) on
// a fixed loopback port, so it can be killed and started again on the
// same address.
type ser2net struct {
	t      *testing.T
	bin    string
	config string
	port   int
	out    *syncBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

func newSer2net(t *testing.T, device string) *ser2net {
	t.Helper()
	bin := ser2netBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	// ser2net.yaml(5), 4.3: the accepter speaks telnet with RFC 2217 on
	// TCP; "local" ignores the modem lines (CLOCAL); kickolduser lets a
	// new connection replace an old one that ser2net still holds.
	cfg := fmt.Sprintf(`%%YAML 1.1
---
connection: &dut
  accepter: telnet(rfc2217),tcp,127.0.0.1,%d
  connector: serialdev,%s,115200n81,local
  options:
    kickolduser: true
`, port, device)
	path := filepath.Join(t.TempDir(), "ser2net.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	s := &ser2net{t: t, bin: bin, config: path, port: port, out: &syncBuffer{}}
	t.Cleanup(s.stop)
	return s
}

func (s *ser2net) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs ser2net in its own process group and waits until it listens.
// Readiness is read from /proc/net/tcp, not probed with a connection: with
// kickolduser a probe would kick the session.
func (s *ser2net) start() {
	s.t.Helper()
	// -n: foreground, -d: log to stdout, -u: no UUCP lock files.
	cmd := exec.Command(s.bin, "-n", "-d", "-u", "-c", s.config)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(s.t, cmd.Start(), "start %s", s.bin)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !listening(s.port) {
		select {
		case err := <-exited:
			exited <- err
			s.t.Fatalf("ser2net exited early (%v); output:\n%s", err, s.out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("ser2net not listening on %s within 10s; output:\n%s", s.addr(), s.out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills ser2net's process group and waits for it; it is idempotent.
func (s *ser2net) stop() {
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
// from /proc/net/tcp{,6}: "sl local_address rem_address st ...", the port
// in hex after the colon, st 0A = LISTEN.
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

// A simulated board bridged to TCP by a real ser2net: the session opens it
// as rfc2217://127.0.0.1:PORT, resets it (ser2net on a pty does not
// acknowledge DTR/RTS, so the classic reset falls back to the RESET verb),
// handshakes, and runs PING and DERIVE. When ser2net is killed the session
// re-opens the port once ser2net is back, or marks the board lost after
// ReconnectTimeout.
func TestRFC2217Ser2net(t *testing.T) {
	tests := []struct {
		name    string
		restart bool
	}{
		{"ser2net restarted", true},
		{"ser2net gone for good", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ser2netBinary(t) // fail or skip before starting anything
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			b, err := sim.Start(context.Background(), sim.Config{Name: "sim-rfc", LinkDir: t.TempDir()})
			require.NoError(t, err)
			defer b.Close()
			srv := newSer2net(t, b.Link())
			defer srv.stop()
			srv.start()

			prof, ok := boards.LookupProfile("esp32-devkitc")
			require.True(t, ok)
			var logMu sync.Mutex
			var logs []string
			reconnect := 10 * time.Second
			if !tt.restart {
				reconnect = time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, SessionConfig{Name: "sim-rfc", Port: "rfc2217://" + srv.addr(), Profile: prof,
				CommandTimeout: time.Second, ReadyTimeout: 3 * time.Second, ReconnectTimeout: reconnect,
				Logf: func(format string, args ...any) {
					logMu.Lock()
					defer logMu.Unlock()
					logs = append(logs, fmt.Sprintf(format, args...))
				}})
			require.NoError(t, err, "ser2net output:\n%s", srv.out)
			defer s.Close()
			logText := func() string {
				logMu.Lock()
				defer logMu.Unlock()
				return strings.Join(logs, "\n")
			}
			assert.Contains(t, logText(), "resetting with the protocol RESET verb instead")
			assert.Contains(t, logText(), "no answer from RFC 2217 server")
			assert.Contains(t, outputText(s.TakeOutput()), "reason=sw")
			info := s.Info()
			assert.Equal(t, sim.DefaultFirmware, info.Firmware)
			assert.NotEmpty(t, info.MAC)

			f, err := s.Call(ctx, protocol.VerbPing, protocol.Bytes("data", []byte("over tcp \xff\xfe")))
			require.NoError(t, err)
			assert.Equal(t, "over tcp \xff\xfe", f.String("data"))

			const group = "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
			want, err := reference.DeriveDeviceKey(group, "sn-007")
			require.NoError(t, err)
			f, err = s.Call(ctx, protocol.VerbDerive, protocol.String("group_key", group), protocol.String("reg_id", "sn-007"))
			require.NoError(t, err)
			assert.Equal(t, want, f.String("device_key"))

			srv.stop()
			require.Eventually(t, func() bool { return strings.Contains(logText(), "vanished") }, 10*time.Second, 10*time.Millisecond,
				"the session notices ser2net is gone")
			if !tt.restart {
				require.Eventually(t, s.Lost, 10*time.Second, 10*time.Millisecond)
				_, err = s.Call(ctx, protocol.VerbPing)
				require.ErrorIs(t, err, ErrBoardLost)
				assert.Contains(t, err.Error(), srv.addr())
				return
			}
			srv.start()
			require.Eventually(t, func() bool { return s.Stats().Reopens == 1 }, 15*time.Second, 10*time.Millisecond,
				"no re-open; session log:\n%s\nser2net output:\n%s", logText(), srv.out)
			// The first call reports the bounce (after HELLO confirmed the
			// same board), the next one works.
			_, err = s.Call(ctx, protocol.VerbPing, protocol.String("data", "x"))
			require.ErrorIs(t, err, ErrBoardReset)
			assert.Equal(t, info.MAC, s.Info().MAC)
			f, err = s.Call(ctx, protocol.VerbPing, protocol.String("data", "back"))
			require.NoError(t, err)
			assert.Equal(t, "back", f.String("data"))
			assert.False(t, s.Lost())
		})
	}
}
