package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/hiltest/hiltest/internal/ser2nettest"
	"github.com/hiltest/hiltest/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

func TestOpenPortTimeoutAndGone(t *testing.T) {
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer slave.Close()
	p, err := OpenPort(slave.Name(), 921600)
	require.NoError(t, err)
	defer p.Close()

	buf := make([]byte, 16)
	n, err := p.Read(buf)
	assert.Equal(t, 0, n)
	require.ErrorIs(t, err, ErrReadTimeout)
	assert.True(t, os.IsTimeout(err))
	assert.False(t, IsPortGone(err))

	_, err = master.Write([]byte("x"))
	require.NoError(t, err)
	n, err = p.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))

	master.Close()
	slave.Close()
	_, err = p.Read(buf)
	require.Error(t, err)
	assert.True(t, IsPortGone(err), "%v", err)
}

func TestIsPortGone(t *testing.T) {
	var closed *serial.PortError
	// A closed port's Read returns *PortError{PortClosed}; get a real one.
	master, slave, err := pty.Open()
	require.NoError(t, err)
	p, err := OpenPort(slave.Name(), 115200)
	require.NoError(t, err)
	p.Close()
	master.Close()
	slave.Close()
	_, rerr := p.Read(make([]byte, 1))
	require.ErrorAs(t, rerr, &closed)

	tests := []struct {
		err  error
		gone bool
	}{
		{nil, false},
		{rerr, true},
		{fmt.Errorf("read: %w", rerr), true},
		{syscall.EIO, true},
		{io.EOF, true},
		{fmt.Errorf("rfc2217 127.0.0.1:2000: read: %w", rfc2217.ErrClosed), true},
		{fmt.Errorf("rfc2217 127.0.0.1:2000: read: %w", io.EOF), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{&net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, true},
		{fmt.Errorf("write: %w", net.ErrClosed), true},
		{fmt.Errorf("set DTR: %w", rfc2217.ErrNoAnswer), false},
		{ErrReadTimeout, false},
		{errors.New("other"), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.gone, IsPortGone(tt.err), "%v", tt.err)
	}
}

func TestPingLoop(t *testing.T) {
	p := newPeer(t)
	defer p.close()
	port, err := OpenPort(p.link, 115200)
	require.NoError(t, err)
	defer port.Close()
	require.NoError(t, PingLoop(context.Background(), port, 5, []byte("0123456789")))
	assert.Equal(t, 5, p.count(protocol.VerbPing))

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	p.setFaults(protocol.VerbPing, actDrop)
	require.ErrorIs(t, PingLoop(ctx, port, 1, nil), context.DeadlineExceeded)
}

// benchPayload is the PING payload the benchmarks send.
var benchPayload = []byte("hiltest-benchmark-payload-0123456789")

// BenchmarkSessionPing measures PING round trips through a session (reader
// goroutine, seq matching, deadlines) on a pty peer.
func BenchmarkSessionPing(b *testing.B) {
	p := newPeer(b)
	defer p.close()
	s, err := Open(context.Background(), SessionConfig{Name: "bench", Port: p.link, NoReset: true,
		Profile: boards.Profile{Reset: boards.ResetNone}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Call(ctx, protocol.VerbPing, protocol.Bytes("data", benchPayload)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBarePing measures PING round trips with a bare go.bug.st/serial
// write+read loop on the same kind of peer: the baseline for the session.
func BenchmarkBarePing(b *testing.B) {
	p := newPeer(b)
	defer p.close()
	port, err := OpenPort(p.link, 115200)
	if err != nil {
		b.Fatal(err)
	}
	defer port.Close()
	b.ResetTimer()
	if err := PingLoop(context.Background(), port, b.N, benchPayload); err != nil {
		b.Fatal(err)
	}
}

// A remote port from OpenPort reads like a local one: ErrReadTimeout when
// nothing arrived, data otherwise, and a gone port once ser2net is gone.
func TestOpenPortRFC2217(t *testing.T) {
	ser2nettest.Binary(t)
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	srv := ser2nettest.New(t, slave.Name())
	srv.Start()
	p, err := OpenPort("rfc2217://"+srv.Addr(), 115200)
	require.NoError(t, err)
	defer p.Close()

	buf := make([]byte, 16)
	n, err := p.Read(buf)
	assert.Equal(t, 0, n)
	require.ErrorIs(t, err, ErrReadTimeout)
	assert.False(t, IsPortGone(err))

	_, err = master.Write([]byte("x"))
	require.NoError(t, err)
	for n == 0 && (err == nil || errors.Is(err, ErrReadTimeout)) {
		n, err = p.Read(buf)
	}
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))

	srv.Stop()
	for err == nil || errors.Is(err, ErrReadTimeout) {
		_, err = p.Read(buf)
	}
	assert.True(t, IsPortGone(err), "%v", err)
}

func TestOpenPortRFC2217Errors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())
	tests := []struct{ name, want string }{
		{"rfc2217://no-port", "want host:port"},
		{"rfc2217://127.0.0.1:1/x", "unexpected path"},
		{"rfc2217://127.0.0.1:1?flow=on", `unknown option "flow"`},
		{"rfc2217://" + refused, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenPort(tt.name, 115200)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "open "+tt.name+": ")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestPortWriteWritesAll interrupts a write that blocks on a full pty with a
// signal, as the Go runtime's preemption does: write(2) then returns a short
// count without an error. go.bug.st/serial passes that on; the port that
// OpenPort returns goes on writing, so the board gets every byte in order.
func TestPortWriteWritesAll(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wrapped bool
	}{{"bare go.bug.st/serial port", false}, {"OpenPort", true}} {
		t.Run(tc.name, func(t *testing.T) {
			master, slave, err := pollpty.Open()
			require.NoError(t, err)
			defer master.Close()
			slave.Close()
			var p serial.Port
			if tc.wrapped {
				p, err = OpenPort(slave.Name(), 115200)
			} else {
				p, err = serial.Open(slave.Name(), &serial.Mode{BaudRate: 115200})
			}
			require.NoError(t, err)
			defer p.Close()

			data := make([]byte, 256<<10) // far more than a pty holds
			for i := range data {
				data[i] = byte('a' + i%26)
			}
			type result struct {
				n   int
				err error
			}
			tidc, done := make(chan int, 1), make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				tidc <- unix.Gettid()
				n, err := p.Write(data)
				done <- result{n, err}
			}()
			tid := <-tidc
			// Let the write fill the pty and block, then interrupt it.
			mc, err := master.SyscallConn()
			require.NoError(t, err)
			deadline := time.Now().Add(10 * time.Second)
			for queued := 0; queued == 0; {
				require.True(t, time.Now().Before(deadline), "the write put nothing in the pty")
				time.Sleep(10 * time.Millisecond)
				require.NoError(t, mc.Control(func(fd uintptr) {
					queued, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
				}))
			}
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, unix.Tgkill(os.Getpid(), tid, unix.SIGURG))
			time.Sleep(50 * time.Millisecond)

			got := make([]byte, 0, len(data))
			buf := make([]byte, 64<<10)
			var r result
			for wrote := false; !wrote || len(got) < r.n; {
				if !wrote {
					select {
					case r = <-done:
						wrote = true
					default:
					}
				}
				require.NoError(t, master.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
				n, err := master.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read master: %v", err)
				}
				if len(got) > len(data) {
					t.Fatalf("read %d bytes, more than the %d written", len(got), len(data))
				}
			}
			if !tc.wrapped {
				// The phenomenon the wrapper exists for.
				require.NoError(t, r.err)
				assert.Less(t, r.n, len(data), "bare Write after a signal returned %d of %d bytes", r.n, len(data))
				return
			}
			require.NoError(t, r.err)
			assert.Equal(t, len(data), r.n)
			assert.True(t, bytes.Equal(data, got), "the board got %d bytes, not the %d written in order", len(got), len(data))
		})
	}
}
