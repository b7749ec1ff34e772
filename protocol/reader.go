package protocol

import (
	"bytes"
	"errors"
	"io"
)

// ErrNoData is returned by Reader.Next when the underlying reader returned no
// bytes and no error, as go.bug.st/serial does when its read timeout expires.
// The Reader keeps its state; call Next again.
var ErrNoData = errors.New("protocol: read returned no data")

// Item is one unit of console input: a frame, a device log line, or a line
// that carried the marker but was rejected (Err is a *FrameError).
type Item struct {
	Frame *Frame      // a valid frame, or nil
	Log   []byte      // device output that is not a frame (without the line ending), or nil
	Err   *FrameError // a rejected frame, or nil
}

// ReaderStats counts what a Reader has seen.
type ReaderStats struct {
	Frames    int // valid frames
	LogLines  int // device output lines (and pieces of over-long ones)
	BadCRC    int // frames rejected for their CRC
	BadFrame  int // frames rejected for their grammar
	TooLong   int // frames rejected for their length
	JunkBytes int // bytes of device output
}

// Reader splits a console byte stream into frames and device log lines. It
// resynchronises after junk: anything that is not a frame is device output,
// and a frame is found even when junk precedes it on the same line.
//
// Next never blocks longer than one Read of the underlying reader; with a
// reader that has a deadline or timeout, Next returns when it expires and the
// Reader keeps any partial line for the next call.
type Reader struct {
	r       io.Reader
	max     int
	buf     []byte // input; buf[off:] is not consumed yet
	off     int
	scanned int    // bytes of buf[off:] known to hold no LF
	discard bool   // dropping the rest of an over-long frame line
	pending []Item // items produced; pending[next:] are not returned yet
	next    int
	stats   ReaderStats
	// sinceGrow counts the items returned since the buffer last grew.
	sinceGrow int
}

// Reader buffer sizes: the starting capacity, the least free space a read
// is given (the buffer grows when less is left), and the capacity above
// which an empty buffer is replaced by a new one of the starting capacity
// once readerShrinkAfter items came without the buffer growing (a run of
// long lines keeps its buffer).
const (
	readerInitBuf     = 1024
	readerMinRead     = 256
	readerShrinkCap   = 2 * readerInitBuf
	readerShrinkAfter = 16
)

// NewReader returns a Reader over r that accepts frames of at most max bytes
// (max <= 0 means DefaultMaxFrame).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	// A small start: most links carry short lines; the buffer grows on demand.
	return &Reader{r: r, max: max, buf: make([]byte, 0, readerInitBuf)}
}

// SetMax changes the maximum frame length.
func (r *Reader) SetMax(max int) {
	if max > 0 {
		r.max = max
	}
}

// Stats returns the counters.
func (r *Reader) Stats() ReaderStats { return r.stats }

// Buffered returns the partial line held since the last LF (not a copy).
func (r *Reader) Buffered() []byte { return r.buf[r.off:] }

// FlushLog returns the partial line held so far as device output and forgets
// it, e.g. when a board stopped mid-line. It returns nil when nothing is held
// or the partial line holds the start of a frame.
func (r *Reader) FlushLog() []byte {
	rest := r.buf[r.off:]
	if len(rest) == 0 || r.discard || bytes.Contains(rest, []byte(Marker)) {
		return nil
	}
	out := bytes.Clone(rest)
	r.buf, r.off, r.scanned = r.buf[:0], 0, 0
	r.stats.LogLines++
	r.stats.JunkBytes += len(out)
	return out
}

// Next returns the next item. Its error is only ever the underlying reader's
// (io.EOF, a timeout, a closed port) or ErrNoData; frame-level problems come
// back as Item.Err.
func (r *Reader) Next() (Item, error) {
	for {
		if r.next < len(r.pending) {
			it := r.pending[r.next]
			r.pending[r.next] = Item{}
			r.next++
			r.sinceGrow++
			if r.next == len(r.pending) {
				// Reuse the queue's array for the next items.
				r.pending, r.next = r.pending[:0], 0
			}
			return it, nil
		}
		if r.process() {
			continue
		}
		if r.off > 0 {
			n := copy(r.buf, r.buf[r.off:])
			r.buf = r.buf[:n]
			r.off = 0
		}
		if len(r.buf) == 0 && cap(r.buf) > readerShrinkCap && r.sinceGrow >= readerShrinkAfter {
			// Long lines grew the buffer, and none came for a while: do
			// not keep the large buffer for the short lines that follow.
			r.buf = make([]byte, 0, readerInitBuf)
		}
		if cap(r.buf)-len(r.buf) < readerMinRead {
			r.sinceGrow = 0
			// Double (a long line grows in few steps, a short-line link
			// stays at its starting size).
			r.buf = append(r.buf, make([]byte, max(len(r.buf), readerInitBuf))...)[:len(r.buf)]
		}
		n, err := r.r.Read(r.buf[len(r.buf):cap(r.buf)])
		if n > 0 {
			r.buf = r.buf[:len(r.buf)+n]
			continue
		}
		if err != nil {
			return Item{}, err
		}
		return Item{}, ErrNoData
	}
}

// process turns buffered input into pending items; it reports whether it made any.
func (r *Reader) process() bool {
	made := false
	for {
		rest := r.buf[r.off:]
		i := bytes.IndexByte(rest[r.scanned:], '\n')
		if i < 0 {
			r.scanned = len(rest)
			if r.overflow() {
				made = true
				continue
			}
			return made
		}
		end := r.scanned + i
		if r.discard {
			r.discard = false
		} else {
			r.line(bytes.TrimSuffix(rest[:end], []byte{'\r'}))
			made = true
		}
		r.off += end + 1
		r.scanned = 0
		if r.off == len(r.buf) {
			r.buf, r.off = r.buf[:0], 0
		}
	}
}

// overflow handles a partial line longer than max; it reports whether it consumed input.
func (r *Reader) overflow() bool {
	rest := r.buf[r.off:]
	if r.discard {
		r.buf, r.off, r.scanned = r.buf[:0], 0, 0
		return false
	}
	if len(rest) <= r.max {
		return false
	}
	m := bytes.Index(rest, []byte(Marker))
	switch {
	case m < 0:
		// Device output without a line end: hand it on in pieces, keeping a
		// tail that could be the start of a marker.
		n := len(rest) - (len(Marker) - 1)
		r.log(rest[:n])
		r.off += n
	case m > 0:
		r.log(rest[:m])
		r.off += m
	default:
		r.stats.TooLong++
		r.pending = append(r.pending, Item{Err: frameErr(CodeTooLong, seqOf(rest), rest,
			"frame longer than the maximum of %d bytes", r.max)})
		r.discard = true
		r.buf, r.off = r.buf[:0], 0
	}
	r.scanned = 0
	return true
}

// log queues device output, in pieces of at most max bytes.
func (r *Reader) log(b []byte) {
	for len(b) > 0 {
		piece := min(len(b), r.max)
		r.stats.LogLines++
		r.stats.JunkBytes += piece
		r.pending = append(r.pending, Item{Log: bytes.Clone(b[:piece])})
		b = b[piece:]
	}
}

func (r *Reader) line(line []byte) {
	m := bytes.Index(line, []byte(Marker))
	if m < 0 {
		r.log(line)
		return
	}
	r.log(line[:m])
	fr := line[m:]
	if len(fr)+1 > r.max {
		r.stats.TooLong++
		r.pending = append(r.pending, Item{Err: frameErr(CodeTooLong, seqOf(fr), fr,
			"frame of %d bytes is longer than the maximum of %d", len(fr)+1, r.max)})
		return
	}
	f, err := Decode(fr)
	if err != nil {
		var fe *FrameError
		if errors.As(err, &fe) {
			if fe.Code == CodeBadCRC {
				r.stats.BadCRC++
			} else {
				r.stats.BadFrame++
			}
			r.pending = append(r.pending, Item{Err: fe})
		}
		return
	}
	r.stats.Frames++
	r.pending = append(r.pending, Item{Frame: f})
}

// seqOf extracts the sequence number from the start of a frame line, or -1.
func seqOf(line []byte) int {
	t := bytes.SplitN(line, []byte{' '}, 4)
	if len(t) < 3 {
		return -1
	}
	n := 0
	for _, c := range t[2] {
		if c < '0' || c > '9' || n > 65535 {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if len(t[2]) == 0 || n > 65535 {
		return -1
	}
	return n
}
