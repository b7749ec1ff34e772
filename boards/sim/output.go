package sim

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// output is the board's UART transmit side: every byte the board prints goes
// through it, in order. Writers queue their bytes and return at once (the
// firmware's UART driver buffer); a transmitter goroutine (run) sends them
// to the pty, paced at the configured line speed. Writers never wait for
// the line, so the state machine, which also serves the control socket (the
// board's reset lines), is never held up by paced output. Output of an
// earlier boot (a worker that was cut off by a reset) is not queued, and a
// reset held on EN or a pulled cable drops what is still queued, as a chip
// reset loses its UART FIFO.
type output struct {
	quit <-chan struct{}
	baud int
	note func(string, ...any) // simulator notes (not faults)
	kick chan struct{}        // capacity 1: bytes were queued

	mu     sync.Mutex
	p      *port // nil while unplugged
	gen    uint64
	max    int    // frame limit: min(board max, host max)
	evSeq  uint16 // event counter, from 0 after each boot
	queue  [][]byte
	queued int  // bytes in queue
	busy   bool // the transmitter is sending bytes it took from the queue

	// Only the transmitter goroutine touches these.
	next  time.Time // when the line is free for the next byte
	stall bool      // a write stalled (no reader) since the last note
}

// writeStall is how long a write may block before the board decides nobody
// reads the port and drops what the line discipline holds.
const writeStall = 500 * time.Millisecond

func newOutput(quit <-chan struct{}, baud int, note func(string, ...any)) *output {
	return &output{quit: quit, baud: baud, note: note, max: MaxFrame, kick: make(chan struct{}, 1)}
}

// setPort connects the transmitter to p; nil (unplugged) also drops what is
// queued: the bytes go nowhere.
func (o *output) setPort(p *port) {
	o.mu.Lock()
	o.p = p
	if p == nil {
		o.dropLocked()
	}
	o.mu.Unlock()
}

// newBoot starts generation gen: event counter 0, default frame limit. With
// lose set (EN pulled low, power lost), the bytes still queued are dropped;
// otherwise (a software restart, a brown-out message the ROM printed) they
// still go out, before the new boot's output.
func (o *output) newBoot(gen uint64, lose bool) {
	o.mu.Lock()
	o.gen, o.evSeq, o.max = gen, 0, MaxFrame
	if lose {
		o.dropLocked()
	}
	o.mu.Unlock()
}

func (o *output) dropLocked() {
	o.queue, o.queued = nil, 0
}

// pending returns how many bytes are queued and not yet sent.
func (o *output) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.queued
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
	o.enqueueLocked(b)
	return nil
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
	o.enqueueLocked(b)
	return nil
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
	o.enqueueLocked(b)
	return nil
}

func (o *output) enqueueLocked(b []byte) {
	if o.p == nil || len(b) == 0 {
		return // unplugged: the bytes go nowhere
	}
	if o.baud == 0 && len(o.queue) == 0 && !o.busy {
		// Unpaced with nothing ahead of these bytes: hand them to the pty
		// now, as far as it takes them without waiting, instead of waking
		// the transmitter for each write. The rest is queued.
		b = b[o.p.tryWrite(b):]
		if len(b) == 0 {
			return
		}
	}
	o.queue = append(o.queue, append([]byte(nil), b...))
	o.queued += len(b)
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// take removes up to n bytes from the head of the queue and returns them
// with the port they go to.
func (o *output) take(n int) ([]byte, *port) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		return nil, o.p
	}
	head := o.queue[0]
	o.busy = true
	if n <= 0 || n >= len(head) {
		o.queue[0] = nil
		o.queue = o.queue[1:]
		o.queued -= len(head)
		return head, o.p
	}
	o.queue[0] = head[n:]
	o.queued -= n
	return head[:n:n], o.p
}

// run is the transmitter: it sends the queued bytes to the pty until quit
// is closed. Paced, it sends about 10 ms of line time per write.
func (o *output) run() {
	var per time.Duration
	chunk := 0 // 0 = a whole queued write at once
	if o.baud > 0 {
		// Ten bit times per byte (8N1).
		per = 10 * time.Second / time.Duration(o.baud)
		chunk = max(1, o.baud/1000)
	}
	for {
		if o.pending() == 0 {
			select {
			case <-o.kick:
				continue
			case <-o.quit:
				return
			}
		}
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
					return
				}
			}
		}
		// Taken after the wait: a reset during the wait drops these bytes
		// too.
		b, p := o.take(chunk)
		if len(b) != 0 && p != nil {
			o.send(p, b, per)
		}
		o.mu.Lock()
		o.busy = false
		o.mu.Unlock()
	}
}

// send writes b to p; when nobody reads the port, it drops what the line
// discipline holds and goes on, as a UART's bytes are lost.
func (o *output) send(p *port, b []byte, per time.Duration) {
	for len(b) > 0 {
		w, err := p.writeWithin(b, writeStall)
		o.next = o.next.Add(time.Duration(w) * per)
		b = b[w:]
		if errors.Is(err, errStalled) {
			p.flushInput()
			if !o.stall && o.note != nil {
				o.note("output stalled (no reader on the port): queued output discarded")
			}
			o.stall = true
			select {
			case <-o.quit:
				return
			default:
			}
			continue
		}
		if err != nil {
			return // the port is gone (unplugged, closed): the bytes with it
		}
		o.stall = false
	}
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
