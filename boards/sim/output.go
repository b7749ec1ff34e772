package sim

import (
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// output is the board's UART transmit side: every byte the board prints goes
// through it, in order, paced at the configured line speed. Output of an
// earlier boot (a worker that was cut off by a reset) is discarded.
type output struct {
	quit <-chan struct{}
	baud int
	note func(string, ...any) // simulator notes (not faults)

	mu    sync.Mutex
	p     *port // nil while unplugged
	gen   uint64
	max   int    // frame limit: min(board max, host max)
	evSeq uint16 // event counter, from 0 after each boot
	next  time.Time
	stall bool // a write stalled (no reader) since the last note
}

// writeStall is how long a write may block before the board decides nobody
// reads the port and drops what the line discipline holds.
const writeStall = 500 * time.Millisecond

func (o *output) setPort(p *port) {
	o.mu.Lock()
	o.p = p
	o.mu.Unlock()
}

// newBoot starts generation gen: event counter 0, default frame limit.
func (o *output) newBoot(gen uint64) {
	o.mu.Lock()
	o.gen, o.evSeq, o.max = gen, 0, MaxFrame
	o.mu.Unlock()
}

// setMax lowers the frame limit to the host's maximum.
func (o *output) setMax(gen uint64, hostMax int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen == o.gen {
		o.max = min(MaxFrame, hostMax)
	}
}

func (o *output) frameMax() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.max
}

// write prints b for boot generation gen.
func (o *output) write(gen uint64, b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return nil
	}
	return o.writeLocked(b)
}

// frame prints f, optionally mangled (a fault); frames too long for the
// current limit are an error.
func (o *output) frame(gen uint64, f *protocol.Frame, mangle func([]byte) []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return nil
	}
	b, err := protocol.Encode(f, o.max)
	if err != nil {
		return err
	}
	if mangle != nil {
		b = mangle(b)
	}
	return o.writeLocked(b)
}

// event prints an event with the next event counter.
func (o *output) event(gen uint64, name string, args ...protocol.Arg) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return nil
	}
	b, err := protocol.Encode(protocol.NewEvent(o.evSeq, name, args...), o.max)
	if err != nil {
		return err
	}
	o.evSeq++
	return o.writeLocked(b)
}

func (o *output) writeLocked(b []byte) error {
	if o.p == nil {
		return nil // unplugged: the bytes go nowhere
	}
	chunk := len(b)
	var per time.Duration
	if o.baud > 0 {
		// Ten bit times per byte (8N1); write about 10 ms of line time at once.
		per = 10 * time.Second / time.Duration(o.baud)
		chunk = max(1, o.baud/1000)
	}
	for len(b) > 0 {
		n := min(chunk, len(b))
		if o.baud > 0 {
			now := time.Now()
			if now.Sub(o.next) > 20*time.Millisecond {
				o.next = now // the line was idle: no credit for it
			}
			if d := o.next.Sub(now); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-o.quit:
					t.Stop()
					return errors.New("board closed")
				}
			}
		}
		_ = o.p.master.SetWriteDeadline(time.Now().Add(writeStall))
		w, err := o.p.master.Write(b[:n])
		if o.baud > 0 {
			o.next = o.next.Add(time.Duration(w) * per)
		}
		b = b[w:]
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Nobody reads the port: like a UART, lose what is queued.
			o.p.flushInput()
			if !o.stall && o.note != nil {
				o.note("output stalled (no reader on the port): queued output discarded")
			}
			o.stall = true
			continue
		}
		if err != nil {
			return err
		}
		o.stall = false
	}
	return nil
}

// mangleCorrupt flips one byte between the marker and the CRC so that the
// frame's CRC no longer matches.
func mangleCorrupt(rng *rand.Rand, detail *string) func([]byte) []byte {
	return func(b []byte) []byte {
		lo, hi := len(protocol.Marker)+1, len(b)-11
		if hi <= lo {
			return b
		}
		i := lo + rng.IntN(hi-lo)
		old := b[i]
		b[i] ^= 0x01
		if b[i] == '\n' || b[i] == '\r' {
			b[i] ^= 0x03
		}
		*detail = describeByteChange(i, old, int(b[i]))
		return b
	}
}

// mangleDrop removes one byte between the marker and the CRC.
func mangleDrop(rng *rand.Rand, detail *string) func([]byte) []byte {
	return func(b []byte) []byte {
		lo, hi := len(protocol.Marker)+1, len(b)-11
		if hi <= lo {
			return b
		}
		i := lo + rng.IntN(hi-lo)
		*detail = describeByteChange(i, b[i], -1)
		return append(b[:i:i], b[i+1:]...)
	}
}

func describeByteChange(off int, old byte, now int) string {
	if now < 0 {
		return "dropped byte " + itoa(off) + " (" + quoteByte(old) + ")"
	}
	return "byte " + itoa(off) + " " + quoteByte(old) + " -> " + quoteByte(byte(now))
}

func quoteByte(c byte) string {
	if c >= 0x21 && c < 0x7f {
		return "'" + string(rune(c)) + "'"
	}
	const hx = "0123456789abcdef"
	return "0x" + string([]byte{hx[c>>4], hx[c&15]})
}
