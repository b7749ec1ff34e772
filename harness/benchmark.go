package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"

	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/hiltest/hiltest/protocol"
)

// Measurements behind "hiltest bench".

// PingResult is a timed run of PING round trips.
type PingResult struct {
	Count   int           `json:"count"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Rate is round trips per second.
func (r PingResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Count) / r.Elapsed.Seconds()
}

// PingBoard times n PING round trips through a board's Call (a session,
// with its framing, seq matching, retries and reader goroutine).
func PingBoard(ctx context.Context, b Board, n int, payload []byte) (PingResult, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		f, err := b.Call(ctx, protocol.VerbPing, protocol.Bytes("data", payload))
		if err != nil {
			return PingResult{}, fmt.Errorf("ping %d: %w", i, err)
		}
		if got, _ := f.Get("data"); !bytes.Equal(got, payload) {
			return PingResult{}, fmt.Errorf("ping %d: echo differs", i)
		}
	}
	return PingResult{Count: n, Elapsed: time.Since(start)}, nil
}

// PingPort times n PING round trips over a bare port opened with OpenPort
// (PingLoop: no session), the baseline for PingBoard.
func PingPort(ctx context.Context, path string, n int, payload []byte) (PingResult, error) {
	p, err := OpenPort(path, 115200)
	if err != nil {
		return PingResult{}, err
	}
	defer p.Close()
	if err := p.ResetInputBuffer(); err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", path, err)
	}
	start := time.Now()
	if err := PingLoop(ctx, p, n, payload); err != nil {
		return PingResult{}, fmt.Errorf("ping %s: %w", path, err)
	}
	return PingResult{Count: n, Elapsed: time.Since(start)}, nil
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM of
// /proc/self/status).
func PeakRSS() (int64, error) {
	return procStatusKB("VmHWM")
}

// CurrentRSS returns the process's resident set size in bytes (VmRSS).
func CurrentRSS() (int64, error) {
	return procStatusKB("VmRSS")
}

func procStatusKB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			kb, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read %s: %w", field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("read %s: not in /proc/self/status", field)
}

// ResetPeakRSS resets VmHWM to the current RSS (Linux: "5" to
// /proc/self/clear_refs), so the next PeakRSS measures from now.
func ResetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	return nil
}

// WireProxy sits between a board's port and a session on a new
// pseudo-terminal and counts the bytes that cross it each way: the bytes on
// the wire. It links <dir>/<name> to its pty and <dir>/<name>.ctl to the
// board's control socket, so a simulated board can still be reset through it.
type WireProxy struct {
	link      string
	toBoard   atomic.Int64
	fromBoard atomic.Int64
	master    *os.File
	slave     *os.File
	port      serial.Port
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// StartWireProxy opens target (a board's port) and a new pty in front of it.
// With baud > 0 it paces the bytes it forwards to the board at baud/10
// bytes per second, as a UART would (a simulated board paces only its own
// output).
func StartWireProxy(target, dir, name string, baud int) (*WireProxy, error) {
	port, err := OpenPort(target, 115200)
	if err != nil {
		return nil, fmt.Errorf("wire proxy: %w", err)
	}
	master, slave, err := pollpty.Open()
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("wire proxy: %w", err)
	}
	p := &WireProxy{link: filepath.Join(dir, name), master: master, slave: slave, port: port}
	if _, err := rawPty(slave); err != nil {
		p.Close()
		return nil, err
	}
	if err := os.Symlink(slave.Name(), p.link); err != nil {
		p.Close()
		return nil, fmt.Errorf("wire proxy: %w", err)
	}
	if _, err := os.Stat(target + ".ctl"); err == nil {
		ctl, err := filepath.Abs(target + ".ctl")
		if err == nil {
			_ = os.Symlink(ctl, p.link+".ctl")
		}
	}
	p.wg.Add(2)
	go func() { // session → board
		defer p.wg.Done()
		buf := make([]byte, 4096)
		var next time.Time // when the line is free again
		for {
			n, err := master.Read(buf)
			if n > 0 {
				p.toBoard.Add(int64(n))
				if baud > 0 {
					// The bytes leave one after another at baud/10 bytes/s:
					// deliver them when the last one would have arrived.
					now := time.Now()
					if next.Before(now) {
						next = now
					}
					next = next.Add(time.Duration(n) * 10 * time.Second / time.Duration(baud))
					time.Sleep(time.Until(next))
				}
				if _, werr := port.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { // board → session
		defer p.wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := port.Read(buf)
			if n > 0 {
				p.fromBoard.Add(int64(n))
				if _, werr := master.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil && !errors.Is(err, ErrReadTimeout) {
				return
			}
		}
	}()
	return p, nil
}

// rawPty puts the proxy's pty in raw mode (no echo, no line editing) by
// opening it once as a serial port, which configures it so.
func rawPty(slave *os.File) (bool, error) {
	p, err := serial.Open(slave.Name(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		return false, fmt.Errorf("wire proxy: raw mode: %w", err)
	}
	return true, p.Close()
}

// Path is the proxy's port (a symlink to its pty).
func (p *WireProxy) Path() string { return p.link }

// Bytes returns the bytes sent to the board and received from it so far.
func (p *WireProxy) Bytes() (toBoard, fromBoard int64) {
	return p.toBoard.Load(), p.fromBoard.Load()
}

// Close stops the proxy.
func (p *WireProxy) Close() error {
	p.closeOnce.Do(func() {
		p.port.Close()
		p.master.Close()
		p.slave.Close()
		os.Remove(p.link)
		os.Remove(p.link + ".ctl")
		p.wg.Wait()
	})
	return nil
}
