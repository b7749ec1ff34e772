package sim

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hangGuard bounds how long a test waits for a call that must return; it is
// a guard against hangs, not a measurement.
const hangGuard = 10 * time.Second

// openHost opens the slave side of p the way a host program does.
func openHost(t *testing.T, p *port) *os.File {
	t.Helper()
	f, err := os.OpenFile(p.path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", p.path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newTestPort(t *testing.T) *port {
	t.Helper()
	p, err := openPort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.close() })
	return p
}

type readResult struct {
	n   int
	err error
}

func readAsync(p *port, b []byte) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		n, err := p.Read(b)
		ch <- readResult{n, err}
	}()
	return ch
}

func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangGuard):
		t.Fatalf("%s did not return within %v", what, hangGuard)
		panic("unreachable")
	}
}

// TestPortReadAndClose checks that a read waits for the host's bytes and
// returns them, and that closing the port ends a waiting read, and every
// later read and write, with errPortClosed.
func TestPortReadAndClose(t *testing.T) {
	p := newTestPort(t)
	host := openHost(t, p)

	buf := make([]byte, 64)
	got := readAsync(p, buf)
	if _, err := host.Write([]byte("@@HIL REQ 1 PING\n")); err != nil {
		t.Fatal(err)
	}
	r := await(t, got, "Read")
	if r.err != nil || string(buf[:r.n]) != "@@HIL REQ 1 PING\n" {
		t.Fatalf("Read = %q, %v; want the host's line", buf[:r.n], r.err)
	}

	waiting := readAsync(p, buf)
	select {
	case r := <-waiting:
		t.Fatalf("Read returned %d, %v with nothing written", r.n, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if r := await(t, waiting, "Read after close"); !errors.Is(r.err, errPortClosed) {
		t.Fatalf("waiting Read after close = %d, %v; want errPortClosed", r.n, r.err)
	}
	if _, err := p.Read(buf); !errors.Is(err, errPortClosed) {
		t.Errorf("Read on a closed port = %v; want errPortClosed", err)
	}
	if n := p.tryWrite([]byte("x")); n != 0 {
		t.Errorf("tryWrite on a closed port took %d bytes", n)
	}
	if _, err := p.writeWithin([]byte("x"), time.Second); !errors.Is(err, errPortClosed) {
		t.Errorf("writeWithin on a closed port = %v; want errPortClosed", err)
	}
	if err := p.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestPortWriteStallsWithoutReader fills the pty with no host reading: the
// write gives up after the stall time with errStalled and what it wrote,
// and there is room again once the held bytes are flushed.
func TestPortWriteStallsWithoutReader(t *testing.T) {
	p := newTestPort(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB, more than a pty holds
	n, err := p.writeWithin(big, 50*time.Millisecond)
	if !errors.Is(err, errStalled) {
		t.Fatalf("writeWithin with no reader = %d, %v; want errStalled", n, err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("writeWithin wrote %d of %d bytes before stalling; want some, not all", n, len(big))
	}
	// Flushing what the line discipline holds makes room for about as
	// much again (without it, only what the kernel moved on meanwhile).
	p.flushInput()
	again, err := p.writeWithin(big[n:], 50*time.Millisecond)
	if again < n/2 {
		t.Fatalf("after flushInput, writeWithin wrote %d bytes (%v); want about %d", again, err, n)
	}
	// The output watch is disarmed again once the write returned: a host
	// reading the held bytes does not wake the board.
	host := openHost(t, p)
	one := make([]byte, 1)
	for i := 0; i < 16; i++ {
		if err := host.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
			t.Fatal(err)
		}
		if _, err := host.Read(one); err != nil {
			t.Fatalf("host read %d: %v", i, err)
		}
		if pollable(t, p.out) {
			t.Fatalf("after a stalled write, the host's read %d made the output watch ready", i)
		}
	}
}

// TestPortCloseEndsStalledWrite closes the port while a write waits for
// buffer space.
func TestPortCloseEndsStalledWrite(t *testing.T) {
	p := newTestPort(t)
	big := bytes.Repeat([]byte("x"), 2<<20)
	ch := make(chan error, 1)
	go func() {
		_, err := p.writeWithin(big, time.Hour)
		ch <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it fill the pty and wait
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	if err := await(t, ch, "writeWithin after close"); !errors.Is(err, errPortClosed) {
		t.Fatalf("stalled writeWithin after close = %v; want errPortClosed", err)
	}
}

// pollable reports whether an epoll instance has events ready, without
// waiting.
func pollable(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil {
			t.Errorf("poll: %v", err)
		}
		ready = n > 0
	}); err != nil {
		t.Fatal(err)
	}
	return ready
}

// TestPortWatchesIgnoreHostReads has the host read the board's output a
// byte at a time, as pyserial's readline does. Each read gives the master
// room to write, which must not wake the board: neither watch becomes
// ready. A byte from the host then makes the input watch ready.
func TestPortWatchesIgnoreHostReads(t *testing.T) {
	p := newTestPort(t)
	host := openHost(t, p)
	line := []byte("@@HIL OK 1 PING data=hello *00000000\n")
	if n := p.tryWrite(line); n != len(line) {
		t.Fatalf("tryWrite took %d of %d bytes", n, len(line))
	}
	one := make([]byte, 1)
	for i := range line {
		if err := host.SetReadDeadline(time.Now().Add(hangGuard)); err != nil {
			t.Fatal(err)
		}
		if _, err := host.Read(one); err != nil {
			t.Fatalf("host read %d: %v", i, err)
		}
		if pollable(t, p.in) || pollable(t, p.out) {
			t.Fatalf("after the host read byte %d, a watch is ready (input %v, output %v); want neither",
				i, pollable(t, p.in), pollable(t, p.out))
		}
	}
	if _, err := host.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangGuard)
	for !pollable(t, p.in) {
		if time.Now().After(deadline) {
			t.Fatal("input watch not ready after the host wrote a byte")
		}
		time.Sleep(time.Millisecond)
	}
}
