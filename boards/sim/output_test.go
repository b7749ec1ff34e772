package sim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// ctlAnswer sends one control line and reads its answer; the context's
// deadline bounds both.
func ctlAnswer(ctx context.Context, c net.Conn, sc *bufio.Scanner, line string) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	if !sc.Scan() {
		return "", sc.Err()
	}
	return sc.Text(), nil
}

// TestControlAnsweredDespitePacedOutput queues far more output than the
// line can carry within the harness's control-socket timeout and checks
// that the reset lines are still answered within it, and that holding EN
// low drops the queued output (the chip's UART FIFO is lost on reset): the
// READY of the next boot arrives long before the queued bytes could have
// drained.
func TestControlAnsweredDespitePacedOutput(t *testing.T) {
	const (
		baud       = 9600
		queuedSize = 64 << 10
		// ctlTimeout is the harness's bound on one control-socket exchange
		// (harness/reset.go).
		ctlTimeout = 2 * time.Second
	)
	drain := time.Duration(queuedSize) * 10 * time.Second / baud // 8N1: ten bit times per byte
	if drain < 10*ctlTimeout {
		t.Fatalf("test set-up: %d bytes at %d baud drain in %s, not far beyond %s", queuedSize, baud, drain, ctlTimeout)
	}
	tests := []struct {
		name  string
		lines []string // sent in order; the last releases EN
	}{
		{"hard reset (RTS)", []string{"rts 1", "rts 0"}},
		{"tight reset (DTR and RTS in one step)", []string{"dtr 0 rts 1", "dtr 0 rts 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := boot(t, Config{Seed: 60, Baud: baud})
			b.out.mu.Lock()
			gen := b.out.gen
			b.out.mu.Unlock()
			if err := b.out.write(gen, bytes.Repeat([]byte("x"), queuedSize)); err != nil {
				t.Fatal(err)
			}
			if p := b.out.pending(); p < queuedSize/2 {
				t.Fatalf("only %d bytes pending after queuing %d", p, queuedSize)
			}
			conn, err := net.Dial("unix", b.ControlPath())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for i, line := range tt.lines {
				ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
				ans, err := ctlAnswer(ctx, conn, sc, line)
				cancel()
				if err != nil {
					t.Fatalf("%q: no answer within %s with %d bytes (%s of line time) queued: %v", line, ctlTimeout, queuedSize, drain, err)
				}
				if !strings.HasPrefix(ans, "ok ") {
					t.Fatalf("%q: %q", line, ans)
				}
				if i == 0 {
					if !strings.Contains(ans, "state=reset") {
						t.Errorf("%q: %q, want the board held in reset", line, ans)
					}
					if p := b.out.pending(); p != 0 {
						t.Errorf("%d bytes still queued while EN is held low", p)
					}
				}
			}
			// The boot after the reset is a few kilobytes: well under the
			// queued output's line time unless that output still goes first.
			ready, err := c.tryWaitEvent(protocol.EventReady, drain/2)
			if err != nil {
				t.Fatalf("no READY within %s after the reset: %v", drain/2, err)
			}
			if r := ready.String("reason"); r != "hw" {
				t.Errorf("READY reason=%s, want hw", r)
			}
			var xs int
			for _, l := range c.logs {
				xs += strings.Count(l, "xxxxxxxx") * 8
			}
			if xs >= queuedSize/2 {
				t.Errorf("%d of the %d queued bytes were sent after the reset", xs, queuedSize)
			}
		})
	}
}

// TestRestartSendsQueuedOutput checks the other side: a restart the
// firmware asks for (RESET) keeps the answer it queued before restarting.
func TestRestartSendsQueuedOutput(t *testing.T) {
	_, c := boot(t, Config{Seed: 61, Baud: 9600})
	c.ok(protocol.VerbReset)
	if r := c.waitEvent(protocol.EventReady, 30*time.Second); r.String("reason") != "sw" {
		t.Errorf("READY reason=%s, want sw", r.String("reason"))
	}
}

// TestUnpacedOutputInOrder pipelines PINGs whose answers together are far
// more than a pty buffers, so that the board's output goes partly straight
// to the pty and partly through the transmitter's queue, and checks that
// every answer arrives whole and in order (and that pipelined PINGs are
// never answered BUSY: each is answered before the next is read).
func TestUnpacedOutputInOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, size int
	}{
		{"short answers", 500, 8},
		{"long answers", 300, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c := boot(t, Config{Seed: 62})
			type got struct {
				seq  uint16
				data string
				err  error
			}
			res := make(chan got, tc.n)
			go func() {
				dl := time.Now().Add(20 * time.Second)
				for i := 0; i < tc.n; {
					it, err := c.next(dl)
					if err != nil {
						res <- got{err: err}
						return
					}
					f := it.Frame
					if it.Err != nil || f == nil || f.Kind == protocol.KindEvent {
						continue
					}
					if f.Kind != protocol.KindOK {
						res <- got{err: fmt.Errorf("answer %s", f.Redacted())}
						return
					}
					d, _ := f.Get("data")
					res <- got{seq: f.Seq, data: string(d)}
					i++
				}
			}()
			want := make([]string, tc.n)
			seqs := make([]uint16, tc.n)
			for i := range want {
				want[i] = fmt.Sprintf("%05d-%s", i, strings.Repeat("x", tc.size))
				seqs[i] = c.send(protocol.VerbPing, protocol.String("data", want[i]))
			}
			for i := range want {
				g := <-res
				if g.err != nil {
					t.Fatalf("answer %d: %v", i, g.err)
				}
				if g.seq != seqs[i] || g.data != want[i] {
					t.Fatalf("answer %d: seq %d data %.12q..., want seq %d data %.12q...", i, g.seq, g.data, seqs[i], want[i])
				}
			}
		})
	}
}
