package rfc2217

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/hiltest/hiltest/internal/ser2nettest"
	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// ptyPair opens a pty; the master stands for the device, ser2net opens the
// slave by path. The slave fd stays open for the test so master reads do
// not fail with EIO when ser2net closes it.
func ptyPair(tb testing.TB) (master, slave *os.File) {
	tb.Helper()
	master, slave, err := pollpty.Open()
	if err != nil {
		tb.Fatalf("open pty: %v", err)
	}
	tb.Cleanup(func() {
		_ = master.Close()
		_ = slave.Close()
	})
	return master, slave
}

// startSer2net runs ser2net exporting device over telnet(rfc2217) on a
// free loopback port and returns "127.0.0.1:port". It is stopped in
// Cleanup.
func startSer2net(tb testing.TB, device string) string {
	tb.Helper()
	srv := ser2nettest.New(tb, device)
	srv.Start()
	return srv.Addr()
}

// readFullDeadline reads n bytes from f (a pty master) within d.
func readFullDeadline(f *os.File, n int, d time.Duration) ([]byte, error) {
	if err := f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, fmt.Errorf("set deadline on %s: %w", f.Name(), err)
	}
	got := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(got) < n {
		k, err := f.Read(buf[:min(len(buf), n-len(got))])
		got = append(got, buf[:k]...)
		if err != nil {
			return got, fmt.Errorf("read %s: %w", f.Name(), err)
		}
	}
	return got, nil
}

func dialSer2net(t testing.TB, addr string, opts Options) *Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p *Port
	var err error
	// Retry briefly in case ser2net refuses the first connection while it
	// is still setting up.
	for range 20 {
		p, err = Dial(ctx, "rfc2217://"+addr, opts)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Dial ser2net: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSer2net(t *testing.T) {
	master, slave := ptyPair(t)
	addr := startSer2net(t, slave.Name())
	p := dialSer2net(t, addr, Options{BaudRate: 115200, ControlTimeout: 500 * time.Millisecond})

	t.Run("client to device", func(t *testing.T) {
		tests := []struct {
			name string
			data []byte
		}{
			{"text", []byte("AT+HELLO\r\n")},
			{"IAC bytes", []byte{0xFF, 'a', 0xFF, 0xFF, 0x00, 0xFE, 0xFD, 0xFF}},
			{"all byte values", allBytes()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := p.Write(tt.data); err != nil {
					t.Fatalf("Write: %v", err)
				}
				got, err := readFullDeadline(master, len(tt.data), 5*time.Second)
				if err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("device got % x (%v), want % x", got, err, tt.data)
				}
			})
		}
	})

	t.Run("device to client", func(t *testing.T) {
		tests := []struct {
			name string
			data []byte
		}{
			{"text", []byte("READY reason=hw\r\n")},
			{"IAC bytes", []byte{0xFF, 0xFF, 'x', 0xFF, 0xFA, 0xF0, 0xFF}},
			{"all byte values", allBytes()},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if _, err := master.Write(tt.data); err != nil {
					t.Fatalf("device write: %v", err)
				}
				got, err := readN(p, len(tt.data))
				if err != nil || !bytes.Equal(got, tt.data) {
					t.Fatalf("client got % x (%v), want % x", got, err, tt.data)
				}
			})
		}
	})

	t.Run("SetMode reaches the device termios", func(t *testing.T) {
		tests := []struct {
			baud  int
			speed uint32
		}{
			{9600, unix.B9600},
			{115200, unix.B115200},
			{921600, unix.B921600},
		}
		for _, tt := range tests {
			if err := p.SetMode(&serial.Mode{BaudRate: tt.baud}); err != nil {
				t.Fatalf("SetMode(%d): %v", tt.baud, err)
			}
			tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatalf("TCGETS on %s: %v", slave.Name(), err)
			}
			if got := tio.Cflag & unix.CBAUD; got != tt.speed {
				t.Errorf("after SetMode(%d): termios speed %#o, want %#o", tt.baud, got, tt.speed)
			}
		}
	})

	t.Run("DTR and RTS do not hang", func(t *testing.T) {
		// A pty has no modem lines; ser2net's ioctl fails and (4.3.11)
		// sends no SET-CONTROL answer, so the requests end with ErrNoAnswer
		// after ControlTimeout. A server that answers makes them succeed.
		for _, c := range []struct {
			name string
			op   func(bool) error
		}{{"DTR", p.SetDTR}, {"RTS", p.SetRTS}} {
			for _, v := range []bool{true, false} {
				res := make(chan error, 1)
				go func() { res <- c.op(v) }()
				var err error
				select {
				case err = <-res:
				case <-time.After(5 * time.Second):
					t.Fatalf("Set%s(%v) still blocked after 5s (ControlTimeout is 500ms)", c.name, v)
				}
				if err != nil && !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("Set%s(%v): %v", c.name, v, err)
				}
				t.Logf("ser2net on a pty, Set%s(%v): %v", c.name, v, err)
			}
		}
		// The port still carries data afterwards.
		if _, err := master.Write([]byte("still")); err != nil {
			t.Fatal(err)
		}
		if got, err := readN(p, 5); err != nil || string(got) != "still" {
			t.Fatalf("after control requests: %q, %v", got, err)
		}
	})

	t.Run("modem status, purge, break, signature", func(t *testing.T) {
		// ser2net sends NOTIFY-MODEMSTATE right after negotiation.
		ms, err := p.GetModemStatusBits()
		if err != nil {
			t.Fatalf("GetModemStatusBits: %v", err)
		}
		t.Logf("GetModemStatusBits on a pty: %+v", *ms)
		if err := p.ResetInputBuffer(); err != nil {
			t.Fatalf("ResetInputBuffer: %v", err)
		}
		if err := p.ResetOutputBuffer(); err != nil {
			t.Fatalf("ResetOutputBuffer: %v", err)
		}
		if err := p.Break(10 * time.Millisecond); err != nil {
			t.Fatalf("Break: %v", err)
		}
		if err := p.request("signature", cmdSignature, nil, func([]byte) (bool, error) { return true, nil }); err != nil {
			t.Fatalf("signature: %v", err)
		}
		if sig := p.Signature(); !strings.Contains(sig, "ser2net") {
			t.Errorf("Signature = %q, want it to name ser2net", sig)
		}
	})

	t.Run("close wakes a blocked read", func(t *testing.T) {
		if err := p.SetReadTimeout(serial.NoTimeout); err != nil {
			t.Fatal(err)
		}
		res := make(chan error, 1)
		go func() {
			_, err := p.Read(make([]byte, 8))
			res <- err
		}()
		time.Sleep(20 * time.Millisecond) // let the Read block (not an assertion)
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case err := <-res:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("Read after Close: %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read still blocked 5s after Close")
		}
	})
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// BenchmarkRoundTrip64 measures a 64-byte message going client -> device
// and back (device echoes), through ser2net over RFC 2217 and, for
// comparison, directly on a pty opened with go.bug.st/serial.
func BenchmarkRoundTrip64(b *testing.B) {
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i * 37) // includes 0xFF bytes for the IAC path
	}
	msg[10], msg[11] = 0xFF, 0xFF
	roundTrip := func(b *testing.B, port serial.Port, master *os.File) {
		b.Helper()
		b.SetBytes(2 * int64(len(msg)))
		b.ResetTimer()
		for b.Loop() {
			if _, err := port.Write(msg); err != nil {
				b.Fatal(err)
			}
			got, err := readFullDeadline(master, len(msg), 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := master.Write(got); err != nil {
				b.Fatal(err)
			}
			back, err := readN(port, len(msg))
			if err != nil || !bytes.Equal(back, msg) {
				b.Fatalf("echo: % x, %v", back, err)
			}
		}
	}
	b.Run("ser2net", func(b *testing.B) {
		master, slave := ptyPair(b)
		addr := startSer2net(b, slave.Name())
		p := dialSer2net(b, addr, Options{BaudRate: 115200})
		roundTrip(b, p, master)
	})
	b.Run("pty", func(b *testing.B) {
		master, slave := ptyPair(b)
		port, err := serial.Open(slave.Name(), &serial.Mode{BaudRate: 115200})
		if err != nil {
			b.Fatalf("open %s: %v", slave.Name(), err)
		}
		b.Cleanup(func() { _ = port.Close() })
		if err := port.SetReadTimeout(5 * time.Second); err != nil {
			b.Fatal(err)
		}
		roundTrip(b, port, master)
	})
}
