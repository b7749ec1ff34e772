package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/hiltest/hiltest/internal/ser2nettest"
	"github.com/hiltest/hiltest/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial"
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
