package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

// Session defaults.
const (
	DefaultCommandTimeout   = 2 * time.Second
	DefaultRetries          = 2
	DefaultReconnectTimeout = 5 * time.Second
	// longVerbSlack is added to a long verb's own timeout argument
	// (PROTOCOL.md §5: DPS.REGISTER gets its timeout plus 5 s).
	longVerbSlack = 5 * time.Second
	// maxOutputLines bounds the device output a session keeps between
	// TakeOutput calls; older lines are dropped.
	maxOutputLines = 10000
)

// ErrClosed is returned by calls on a closed session.
var ErrClosed = errors.New("session closed")

// ErrNoCapability is returned (wrapped) by Call for a verb whose capability
// the board did not list in HELLO.
var ErrNoCapability = errors.New("board lacks the capability")

// SessionConfig says which board to open and how to talk to it.
type SessionConfig struct {
	Name string // the board's name in the bench
	// Port is a device path or a symlink to one, or a port exported over
	// RFC 2217, "rfc2217://host:port[?ign_set_control]" (ser2net; give it
	// "kickolduser: true" so a re-connect replaces a half-dead connection).
	// The session re-opens the same path when the port vanishes, so a
	// stable symlink (/dev/serial/by-id/..., a simulator link) follows a
	// re-plug, and a remote port comes back when its server does. A bare
	// path (/dev/pts/N, /dev/ttyUSB0) may lead to another device after a
	// re-open, so nothing but HELLO is written to a re-opened port until
	// the board's answer carries the MAC seen before; another MAC, or no
	// answer within ReadyTimeout and the HELLO retries, closes the port and
	// makes the board lost (ErrBoardLost).
	Port string
	// USB finds the port by USB VID/PID/serial number instead of Port (at
	// open and at every re-open).
	USB     *boards.USBMatch
	Profile boards.Profile
	Baud    int  // 0 = the profile's (115200 when that is 0 too)
	NoReset bool // skip the reset at open and just handshake
	// CommandTimeout is each request's deadline (default 2 s); long verbs
	// (DPS.REGISTER, NET.WIFI) get their own timeout argument plus 5 s.
	CommandTimeout time.Duration
	// Retries is how often a request is resent after a bad CRC, a lost
	// answer or BUSY (0 = DefaultRetries, negative = never).
	Retries int
	// ReadyTimeout bounds the wait for READY after a reset (default: the
	// profile's boot time plus 3 s). Without READY the session tries HELLO.
	ReadyTimeout time.Duration
	// ReconnectTimeout bounds the wait for a vanished port to come back
	// (default 5 s); after it the board is lost.
	ReconnectTimeout time.Duration
	// MaxFrame is the longest frame the host accepts (0 = 4096).
	MaxFrame int
	// Logf receives the session's own messages (retries, reconnects,
	// fallbacks); nil discards them.
	Logf func(format string, args ...any)
	// Ports lists serial ports for USB matching; nil = ListPorts.
	Ports func() ([]PortInfo, error)
	// OpenPort opens a port; nil = OpenPortContext, bounded by Open's
	// context at open and by ReconnectTimeout (and Close) at a re-open.
	// Its Read must return ErrReadTimeout (or (0, nil)) when its read
	// timeout expires.
	OpenPort func(path string, baud int) (serial.Port, error)
}

// SessionStats counts what happened on a session.
type SessionStats struct {
	Requests  int // requests sent (retries included)
	Retries   int // requests resent
	Timeouts  int // attempts that got no answer in time
	BadCRC    int // frames from the board rejected for their CRC
	BadFrame  int // frames from the board rejected for their grammar
	TooLong   int // frames from the board longer than the maximum
	Stale     int // responses whose seq was not the awaited one (discarded)
	Resets    int // READY events seen (each boot)
	Reopens   int // times the port vanished and was re-opened
	JunkBytes int // bytes of device output
	LogLines  int // lines of device output
	Dropped   int // events dropped because nobody read them in time
	BytesOut  int // bytes written to the board
	BytesIn   int // bytes read from the board
}

// Session is an open connection to one board. It implements Board. Its
// methods are safe for concurrent use; requests are sent one at a time.
type Session struct {
	cfg     SessionConfig
	retries int

	callMu sync.Mutex // one operation (request, reset, handshake) at a time
	// Guarded by callMu: reused by every operation.
	wbuf  []byte      // the request being written
	timer *time.Timer // an attempt's deadline (stopped between attempts)
	op    waiter      // the current operation's waiter

	mu       sync.Mutex
	port     serial.Port // nil while re-opening or after loss
	path     string      // path of the current port
	info     BoardInfo
	txMax    int // longest frame we send: min(host, board)
	output   []LogLine
	waiter   *waiter
	stats    SessionStats
	bytesIn  atomic.Int64         // stats.BytesIn, counted by the reader without mu
	rdPrev   protocol.ReaderStats // stats of readers replaced after a re-open
	rdCur    protocol.ReaderStats
	rebooted string // READY reason seen outside a request, "" = none
	bounced  bool   // the port vanished and came back outside a request
	// unverified is set when the port was re-opened and no HELLO has
	// confirmed yet that the same board is behind it: a /dev/pts/N path
	// may now lead to an unrelated program's pty. Only HELLO is written
	// to an unverified port.
	unverified bool
	lost       error // set when the board is lost for good
	seq        uint16

	events chan event // what the reader hands to the current operation
	// Reading (see readOnce): rdTok holds the read token while nobody
	// reads; rdHandoff passes it with a read error (rdErr) from a caller to
	// the reader goroutine. The rd* fields belong to the token's holder.
	rdTok       chan struct{}
	rdHandoff   chan struct{}
	rd          *protocol.Reader
	rdPort      serial.Port
	rdSeen      protocol.ReaderStats // the last rd.Stats() copied to rdCur
	rdErr       error
	rdCaller    bool         // the holder is a request's caller
	inAttempt   atomic.Bool  // a request is in flight
	lastAttempt atomic.Int64 // when the last request ended (ns since born)
	born        time.Time    // when the session was made (a monotonic clock)
	open        func(ctx context.Context, path string, baud int) (serial.Port, error)
	life        context.Context // cancelled by Close; bounds re-opens
	endLife     context.CancelFunc
	closing     chan struct{}
	done        chan struct{} // closed when the reader goroutine exits
	closeOnce   sync.Once
	closeErr    error
}

var _ Board = (*Session)(nil)

// waiter receives what the reader goroutine sees for the current operation:
// responses with the awaited seq, events, rejected frames with that seq,
// and port state changes.
type waiter struct {
	seq int // awaited response seq; -1 = none
	ch  chan event
}

type portState int

const (
	portUp portState = iota
	portDown
	portBack
	portLost
)

type event struct {
	at    time.Time // when the reader handed it over
	frame *protocol.Frame
	ferr  *protocol.FrameError
	state portState
	err   error
}

// Open opens the board's port, resets it with its profile's method (unless
// cfg.NoReset), skips its boot output, waits for READY and completes the
// HELLO handshake, checking the protocol version. The session owns one
// reader goroutine until Close.
func Open(ctx context.Context, cfg SessionConfig) (*Session, error) {
	if cfg.Port == "" && cfg.USB == nil {
		return nil, fmt.Errorf("open board %q: no port and no USB match", cfg.Name)
	}
	if cfg.Baud <= 0 {
		cfg.Baud = cfg.Profile.Baud
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = cfg.Profile.BootTime + 3*time.Second
	}
	if cfg.ReconnectTimeout <= 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = protocol.DefaultMaxFrame
	}
	if cfg.Ports == nil {
		cfg.Ports = ListPorts
	}
	if cfg.Profile.Reset == "" {
		cfg.Profile.Reset = boards.ResetNone
	}
	s := &Session{cfg: cfg, retries: cfg.Retries, txMax: cfg.MaxFrame, open: OpenPortContext,
		events: make(chan event, 64), closing: make(chan struct{}), done: make(chan struct{}),
		rdTok: make(chan struct{}, 1), rdHandoff: make(chan struct{}, 1), born: time.Now()}
	s.lastAttempt.Store(-int64(readerGrace))
	if cfg.OpenPort != nil {
		s.open = func(_ context.Context, path string, baud int) (serial.Port, error) { return cfg.OpenPort(path, baud) }
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	if s.retries == 0 {
		s.retries = DefaultRetries
	} else if s.retries < 0 {
		s.retries = 0
	}
	p, path, err := s.openPort(ctx)
	if err != nil {
		s.endLife()
		close(s.done)
		return nil, fmt.Errorf("open board %q: %w", cfg.Name, err)
	}
	s.port, s.path = p, path
	go s.readLoop(p)

	s.callMu.Lock()
	if cfg.NoReset {
		w := s.begin()
		err = s.hello(ctx, w)
		s.end()
	} else {
		err = s.reset(ctx)
	}
	s.callMu.Unlock()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open board %q on %s: %w", cfg.Name, path, err)
	}
	return s, nil
}

// Name returns the board's name.
func (s *Session) Name() string { return s.cfg.Name }

// Path returns the path of the port the session has open ("" when none).
func (s *Session) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.path
}

// Info returns the result of the last HELLO.
func (s *Session) Info() BoardInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.info
	i.Caps = append([]string(nil), i.Caps...)
	return i
}

// Lost reports whether the board is lost (its port did not come back).
func (s *Session) Lost() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost != nil
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.BytesIn = int(s.bytesIn.Load())
	r := s.rdPrev
	r.BadCRC += s.rdCur.BadCRC
	r.BadFrame += s.rdCur.BadFrame
	r.TooLong += s.rdCur.TooLong
	r.JunkBytes += s.rdCur.JunkBytes
	r.LogLines += s.rdCur.LogLines
	st.BadCRC, st.BadFrame, st.TooLong, st.JunkBytes, st.LogLines = r.BadCRC, r.BadFrame, r.TooLong, r.JunkBytes, r.LogLines
	return st
}

// TakeOutput returns the device output captured since the last call: boot
// banners, logs, junk, rejected frames, each line with the time it was
// received.
func (s *Session) TakeOutput() []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.output
	s.output = nil
	return out
}

// Close closes the port and waits for the reader goroutine to exit. It is
// idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.endLife()
		s.mu.Lock()
		p := s.port
		s.port = nil
		s.mu.Unlock()
		if p != nil {
			s.closeErr = p.Close()
		}
		<-s.done
	})
	return s.closeErr
}

func (s *Session) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf("%s: "+format, append([]any{s.cfg.Name}, args...)...)
	}
}

func (s *Session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// openPort opens the board's port by path or by USB match (never for a
// remote port, which has no USB identity on this host).
func (s *Session) openPort(ctx context.Context) (serial.Port, string, error) {
	path := s.cfg.Port
	if s.cfg.USB != nil && !rfc2217.IsName(path) {
		ports, err := s.cfg.Ports()
		if err != nil {
			return nil, "", err
		}
		pi, err := FindUSB(ports, *s.cfg.USB)
		if err != nil {
			return nil, "", err
		}
		path = pi.Name
	}
	p, err := s.open(ctx, path, s.cfg.Baud)
	if err != nil {
		return nil, path, err
	}
	return p, path, nil
}

// ---- reading ----

// The port is read by whoever holds the read token (Session.rdTok): the
// reader goroutine while the session is idle, and the caller of a request
// while it waits for the answer. A caller that reads the answer itself
// wakes no other goroutine, as a bare write/read loop does; the reader
// goroutine stays away from the port while a request is in flight and for
// readerGrace after one, so that back-to-back requests keep reading on
// their callers' goroutines. Whatever is read is dispatched the same way by
// either. A read error other than a timeout is always handled by the reader
// goroutine (re-open, loss), to which a caller hands the token with it. A
// caller in a read notices its context's end or its deadline when the read
// returns, at the latest after the port's read timeout (DefaultReadTimeout).

// readerGrace is how long after a request the reader goroutine leaves the
// port to the next request's caller. Device output arriving meanwhile waits
// in the port's buffer.
const readerGrace = 2 * time.Millisecond

// callerReads reports whether a request's caller is reading the port now or
// may do so soon, so the reader goroutine should leave it alone.
func (s *Session) callerReads() bool {
	return s.inAttempt.Load() || time.Since(s.born)-time.Duration(s.lastAttempt.Load()) < readerGrace
}

// setReader starts reading port with a new protocol.Reader; the read token
// must be held.
func (s *Session) setReader(port serial.Port) {
	s.rdPort = port
	s.rd = protocol.NewReader(countingReader{port, s}, s.cfg.MaxFrame)
	s.rdSeen = protocol.ReaderStats{}
}

// readOnce reads and dispatches one item; the read token must be held. It
// returns the error of the read that is neither nil nor a timeout.
func (s *Session) readOnce() error {
	it, err := s.rd.Next()
	st := s.rd.Stats()
	st.Frames = 0 // not reported: a valid frame needs no update
	if st != s.rdSeen {
		s.rdSeen = st
		s.mu.Lock()
		s.rdCur = st
		s.mu.Unlock()
	}
	if err == nil {
		s.dispatch(it)
		return nil
	}
	if isTimeout(err) {
		if b := s.rd.FlushLog(); b != nil {
			s.addOutput(string(b))
		}
		return nil
	}
	return err
}

// callerRead reads one item on a request's caller's goroutine, which has
// just taken the read token. A read error goes to the reader goroutine with
// the token, and the caller stops reading for this attempt (*handed).
func (s *Session) callerRead(handed *bool) {
	s.rdCaller = true
	err := s.readOnce()
	s.rdCaller = false
	if err != nil {
		s.rdErr = err
		*handed = true
		s.rdHandoff <- struct{}{}
		return
	}
	s.rdTok <- struct{}{}
}

// readLoop is the reader goroutine. While it holds the read token it hands
// frames to the waiting operation, keeps device output, and re-opens a
// vanished port. It exits on Close or when the board is lost, keeping the
// token so that nobody reads any more.
func (s *Session) readLoop(port serial.Port) {
	defer close(s.done)
	s.setReader(port) // the goroutine starts out with the token
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for own := true; ; {
		if !own {
			// Wait for the token. While a caller reads or may soon, only a
			// handed-over read error brings it back, and the grace running
			// out makes the loop look again.
			tok, recheck := s.rdTok, (<-chan time.Time)(nil)
			if s.callerReads() {
				if idle == nil {
					idle = time.NewTimer(readerGrace)
				} else {
					idle.Reset(readerGrace)
				}
				tok, recheck = nil, idle.C
			}
			select {
			case <-s.closing:
				return
			case <-recheck:
				continue
			case <-s.rdHandoff:
			case <-tok:
			}
			own = true
		}
		var err error
		if s.rdErr != nil {
			err, s.rdErr = s.rdErr, nil
		} else if s.callerReads() {
			// A request started: leave the port to its caller.
			s.rdTok <- struct{}{}
			own = false
			continue
		} else {
			err = s.readOnce()
		}
		if err == nil {
			if s.isClosing() {
				return
			}
			continue
		}
		if s.isClosing() || s.Lost() {
			return
		}
		if !IsPortGone(err) {
			s.logf("read %s: %v", s.Path(), err)
		}
		np := s.reconnect(s.rdPort, err)
		if np == nil {
			return
		}
		s.mu.Lock()
		st := s.rd.Stats()
		s.rdPrev.BadCRC += st.BadCRC
		s.rdPrev.BadFrame += st.BadFrame
		s.rdPrev.TooLong += st.TooLong
		s.rdPrev.JunkBytes += st.JunkBytes
		s.rdPrev.LogLines += st.LogLines
		s.rdCur = protocol.ReaderStats{}
		s.mu.Unlock()
		s.setReader(np)
	}
}

// countingReader counts the bytes read from the port.
type countingReader struct {
	r io.Reader
	s *Session
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.s.bytesIn.Add(int64(n))
	}
	return n, err
}

// reconnect closes the vanished port and re-opens it, retrying every
// 100-500 ms until ReconnectTimeout. It returns nil when the session closes
// or the board is lost.
func (s *Session) reconnect(old serial.Port, cause error) serial.Port {
	s.mu.Lock()
	path := s.path
	if s.port == old {
		s.port = nil
	}
	s.mu.Unlock()
	old.Close()
	s.logf("port %s vanished (%v); waiting up to %v for it to return", path, cause, s.cfg.ReconnectTimeout)
	s.notify(event{state: portDown, err: cause})
	deadline := time.Now().Add(s.cfg.ReconnectTimeout)
	delay := 100 * time.Millisecond
	var lastErr error
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.closing:
			t.Stop()
			return nil
		case <-t.C:
		}
		if s.Lost() {
			return nil // lost while waiting (a stranger behind the port)
		}
		// Each attempt may take until the reconnect deadline, and at
		// least a second (a remote port's connect and negotiation).
		octx, cancel := context.WithDeadline(s.life, latest(deadline, time.Now().Add(time.Second)))
		p, np, err := s.openPort(octx)
		cancel()
		if err == nil {
			s.mu.Lock()
			if s.isClosing() || s.lost != nil {
				s.mu.Unlock()
				p.Close()
				return nil
			}
			s.port, s.path = p, np
			s.unverified = true
			s.stats.Reopens++
			if s.waiter == nil {
				s.bounced = true
			}
			s.mu.Unlock()
			s.logf("port %s re-opened", np)
			s.notify(event{state: portBack})
			return p
		}
		lastErr = err
		if !time.Now().Before(deadline) {
			break
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
	lost := fmt.Errorf("%w: %s did not come back within %v (%v)", ErrBoardLost, path, s.cfg.ReconnectTimeout, lastErr)
	s.mu.Lock()
	s.lost = lost
	s.mu.Unlock()
	s.logf("%v", lost)
	s.notify(event{state: portLost, err: lost})
	return nil
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dispatch routes one item from the reader.
func (s *Session) dispatch(it protocol.Item) {
	switch {
	case it.Log != nil:
		s.addOutput(string(it.Log))
	case it.Err != nil:
		s.addOutput(fmt.Sprintf("[rejected frame: %v] %s", it.Err, redactLine(it.Err.Line)))
		s.mu.Lock()
		w := s.waiter
		s.mu.Unlock()
		if w != nil && it.Err.Seq >= 0 && it.Err.Seq == s.awaited() {
			s.send(w, event{ferr: it.Err})
		}
	case it.Frame != nil:
		s.dispatchFrame(it.Frame)
	}
}

// redactLine hides the values of secret arguments (protocol.IsSecret) in a
// frame line that could not be decoded, so device output can be reported.
func redactLine(line []byte) string {
	toks := strings.Split(string(line), " ")
	for i, t := range toks {
		k, v, ok := strings.Cut(t, "=")
		if ok && v != "" && protocol.IsSecret(k) {
			toks[i] = k + "=[redacted]"
		}
	}
	return strings.Join(toks, " ")
}

func (s *Session) awaited() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiter == nil {
		return -1
	}
	return s.waiter.seq
}

func (s *Session) dispatchFrame(f *protocol.Frame) {
	s.mu.Lock()
	w := s.waiter
	seq := -1
	if w != nil {
		seq = w.seq
	}
	switch {
	case f.Kind == protocol.KindEvent && f.Verb == protocol.EventReady:
		s.stats.Resets++
		if w == nil {
			s.rebooted = f.String("reason")
			if s.rebooted == "" {
				s.rebooted = "unknown"
			}
		}
		s.mu.Unlock()
		s.addOutput(fmt.Sprintf("[READY reason=%s fw=%s fw_version=%s]", f.String("reason"), f.String("fw"), f.String("fw_version")))
		if w != nil {
			s.send(w, event{frame: f})
		}
		return
	case f.Kind == protocol.KindEvent && f.Verb == protocol.EventLog:
		s.mu.Unlock()
		s.addOutput(fmt.Sprintf("[%s %s] %s", f.String("level"), f.String("tag"), f.String("msg")))
		return
	case f.Kind == protocol.KindEvent:
		s.mu.Unlock()
		if w != nil {
			s.send(w, event{frame: f})
		}
		return
	case f.Kind.IsResponse() && w != nil && int(f.Seq) == seq && seq > 0:
		s.mu.Unlock()
		s.send(w, event{frame: f})
		if !s.rdCaller {
			// Let the waiting caller run now on this P rather than after
			// this goroutine's next blocking read gives the P up.
			runtime.Gosched()
		}
		return
	case f.Kind == protocol.KindError && f.Seq == 0 && f.Verb == protocol.VerbFrame && w != nil && seq > 0:
		// The board could not read our request's seq: it was garbled on
		// the way. Only one request is outstanding, so resend it now.
		s.mu.Unlock()
		s.send(w, event{frame: f})
		return
	case f.Kind.IsResponse():
		s.stats.Stale++
		s.mu.Unlock()
		s.logf("discarded %s %d %s (awaiting seq %d)", f.Kind, f.Seq, f.Verb, seq)
		return
	}
	s.mu.Unlock()
}

func (s *Session) send(w *waiter, ev event) {
	ev.at = time.Now()
	select {
	case w.ch <- ev:
	default:
		s.mu.Lock()
		s.stats.Dropped++
		s.mu.Unlock()
	}
}

func (s *Session) notify(ev event) {
	s.mu.Lock()
	w := s.waiter
	s.mu.Unlock()
	if w != nil {
		s.send(w, ev)
	}
}

func (s *Session) addOutput(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.output) >= maxOutputLines {
		n := copy(s.output, s.output[len(s.output)-maxOutputLines/2:])
		s.output = s.output[:n]
	}
	s.output = append(s.output, LogLine{Time: time.Now(), Text: text})
}

// ---- operations ----

// begin registers the waiter for one operation; callMu must be held.
// The event channel is the session's, reused by every operation; events
// left over from an earlier operation are dropped here.
func (s *Session) begin() *waiter {
	w := &s.op
	for drained := false; !drained; {
		select {
		case <-s.events:
		default:
			drained = true
		}
	}
	s.mu.Lock()
	*w = waiter{seq: -1, ch: s.events}
	s.waiter = w
	s.mu.Unlock()
	return w
}

func (s *Session) end() {
	s.mu.Lock()
	s.waiter = nil
	s.mu.Unlock()
}

func (s *Session) nextSeq(w *waiter) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	if s.seq == 0 {
		s.seq = 1
	}
	w.seq = int(s.seq)
	s.stats.Requests++
	return s.seq
}

// Call sends a request and returns the board's OK frame (see Board.Call).
// Argument values too long for a frame go through BLOB.PUT and results
// given as K.blob/K.len are fetched with BLOB.GET, so the returned frame
// holds K itself. RESET is handled as Reset with the protocol verb.
func (s *Session) Call(ctx context.Context, verb string, args ...protocol.Arg) (*protocol.Frame, error) {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if err := s.ready(ctx, verb == protocol.VerbReset); err != nil {
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	if verb == protocol.VerbReset {
		w := s.begin()
		defer s.end()
		f, err := s.softReset(ctx, w)
		if err == nil {
			err = s.afterReset(ctx, w, false, time.Time{})
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", verb, err)
		}
		return f, nil
	}
	c := protocol.CapabilityFor(verb)
	s.mu.Lock()
	hasCap := s.info.HasCap(c)
	s.mu.Unlock()
	if c != "" && !hasCap {
		return nil, fmt.Errorf("%s: %w %q", verb, ErrNoCapability, c)
	}
	w := s.begin()
	defer s.end()
	args, err := s.putBlobs(ctx, w, verb, args)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	f, err := s.request(ctx, w, verb, args)
	if err != nil {
		return nil, err
	}
	return s.getBlobs(ctx, w, f)
}

// ready checks the session can take a request: it is not closed or lost,
// and the board did not reboot (or its port bounce) since the last request;
// if it did, it re-handshakes and reports ErrBoardReset, since whatever
// state the caller set up on the board is gone.
func (s *Session) ready(ctx context.Context, resetting bool) error {
	if s.isClosing() {
		return ErrClosed
	}
	s.mu.Lock()
	lost, reason, bounced, unverified := s.lost, s.rebooted, s.bounced, s.unverified
	if !resetting {
		s.rebooted, s.bounced = "", false
	}
	s.mu.Unlock()
	if lost != nil {
		return lost
	}
	if resetting && unverified {
		// Not even a RESET goes to a re-opened port before HELLO has
		// confirmed the board behind it.
		w := s.begin()
		defer s.end()
		return s.verify(ctx, w)
	}
	// A port re-opened during an operation that ended before HELLO
	// confirmed the board counts as a bounce.
	bounced = bounced || unverified
	if resetting || reason == "" && !bounced {
		return nil
	}
	what := "board rebooted (READY reason=" + reason + ") since the last request"
	if bounced {
		what = "port vanished and came back since the last request"
	}
	w := s.begin()
	defer s.end()
	if err := s.hello(ctx, w); err != nil {
		if errors.Is(err, ErrBoardLost) {
			return err
		}
		return fmt.Errorf("%w: %s; handshake after it failed: %w", ErrBoardReset, what, err)
	}
	return fmt.Errorf("%w: %s", ErrBoardReset, what)
}

// request runs one request with retries; a reboot during it re-handshakes
// and fails with ErrBoardReset.
func (s *Session) request(ctx context.Context, w *waiter, verb string, args []protocol.Arg) (*protocol.Frame, error) {
	f, err := s.roundTrip(ctx, w, verb, args)
	if err == nil {
		return f, nil
	}
	if rb, ok := errors.AsType[*rebootError](err); ok {
		what := "READY reason=" + rb.reason
		if rb.bounced {
			what = "port vanished and came back"
		}
		if herr := s.afterReset(ctx, w, !rb.bounced, time.Time{}); errors.Is(herr, ErrBoardLost) {
			return nil, fmt.Errorf("%s: %w", verb, herr)
		} else if herr != nil {
			return nil, fmt.Errorf("%s: %w (%s); handshake after it failed: %w", verb, ErrBoardReset, what, herr)
		}
		return nil, fmt.Errorf("%s: %w (%s)", verb, ErrBoardReset, what)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", verb, err)
	}
	return f, nil
}

// rebootError is what an attempt returns when the board rebooted under it.
type rebootError struct {
	reason  string
	bounced bool
}

func (e *rebootError) Error() string {
	if e.bounced {
		return "port vanished and came back"
	}
	return "board rebooted (READY reason=" + e.reason + ")"
}

// timeoutFor returns the deadline of one attempt and whether a lost answer
// is retried.
func (s *Session) timeoutFor(verb string, args []protocol.Arg) (time.Duration, bool) {
	def := int64(0)
	switch verb {
	case protocol.VerbDPSRegister:
		def = 60
	case protocol.VerbNetWiFi:
		def = 20
	default:
		// The request and the longest answer must also fit through the
		// line: a full frame takes 0.36 s at 115200 baud and 4.3 s at 9600.
		req := protocol.EncodedFrameLen(&protocol.Frame{Kind: protocol.KindRequest, Seq: 65535, Verb: verb, Args: args})
		return s.cfg.CommandTimeout + lineTime(req+s.cfg.MaxFrame, s.cfg.Baud), true
	}
	f := protocol.Frame{Args: args}
	if n, err := f.Int("timeout"); err == nil && n > 0 {
		def = n
	}
	return time.Duration(def)*time.Second + longVerbSlack, false
}

// lineTime is how long n bytes take on a serial line at baud (8N1: ten
// bits a byte); 0 when the baud rate is unknown.
func lineTime(n, baud int) time.Duration {
	if baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// roundTrip sends a request, resending it with a new seq after a bad CRC,
// a garbled-request error, BUSY or (for short verbs) a lost answer, up to
// the retry limit.
func (s *Session) roundTrip(ctx context.Context, w *waiter, verb string, args []protocol.Arg) (*protocol.Frame, error) {
	timeout, retryLost := s.timeoutFor(verb, args)
	var lastErr error
	for attempt := 0; attempt <= s.retries; attempt++ {
		if attempt > 0 {
			s.mu.Lock()
			s.stats.Retries++
			s.mu.Unlock()
			s.logf("%s: retry %d after: %v", verb, attempt, lastErr)
		}
		f, err, retry := s.attempt(ctx, w, verb, args, timeout)
		if err == nil {
			return f, nil
		}
		lastErr = err
		if !retry || (errors.Is(err, ErrTimeout) && !retryLost) {
			return nil, err
		}
	}
	return nil, lastErr
}

// attempt sends the request once and waits for its answer. retry reports
// whether resending may help.
func (s *Session) attempt(ctx context.Context, w *waiter, verb string, args []protocol.Arg, timeout time.Duration) (f *protocol.Frame, err error, retry bool) {
	s.inAttempt.Store(true)
	defer func() {
		s.lastAttempt.Store(int64(time.Since(s.born)))
		s.inAttempt.Store(false)
	}()
	seq := s.nextSeq(w)
	req := protocol.NewRequest(seq, verb, args...)
	if err := s.write(req); err != nil {
		switch {
		case errors.Is(err, errNoPort):
			// The reader is re-opening the port.
			if err := s.waitPort(ctx, w); err != nil {
				return nil, err, false
			}
			return nil, &rebootError{bounced: true}, false
		case !IsPortGone(err):
			return nil, err, false
		}
		// The port is going away; the reader tells what happens next.
	}
	timer := s.deadline(timeout)
	defer timer.Stop()
	handed := false // a read error went to the reader goroutine
	for {
		var ev event
		select {
		case ev = <-w.ch: // what was already dispatched comes first
		default:
			tok := s.rdTok
			if handed {
				tok = nil
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("seq %d: %w", seq, ctx.Err()), false
			case <-s.closing:
				return nil, ErrClosed, false
			case <-timer.C:
				s.mu.Lock()
				s.stats.Timeouts++
				lost := s.lost
				s.mu.Unlock()
				if lost != nil {
					return nil, lost, false
				}
				return nil, fmt.Errorf("seq %d: no answer within %v: %w", seq, timeout, ErrTimeout), true
			case ev = <-w.ch:
			case <-tok:
				s.callerRead(&handed)
				continue
			}
		}
		switch {
		case ev.state == portDown:
			timer.Stop()
			if err := s.waitPort(ctx, w); err != nil {
				return nil, err, false
			}
			return nil, &rebootError{bounced: true}, false
		case ev.state == portLost:
			return nil, ev.err, false
		case ev.state == portBack:
			// The port bounced before this request was written.
			return nil, &rebootError{bounced: true}, false
		case ev.ferr != nil:
			if ev.ferr.Code == protocol.CodeBadCRC || ev.ferr.Code == protocol.CodeBadFrame {
				return nil, fmt.Errorf("seq %d: answer rejected: %w", seq, ev.ferr), true
			}
			return nil, fmt.Errorf("seq %d: answer rejected: %w", seq, ev.ferr), false
		case ev.frame == nil:
			continue
		case ev.frame.Kind == protocol.KindEvent && ev.frame.Verb == protocol.EventReady:
			return nil, &rebootError{reason: ev.frame.String("reason")}, false
		case ev.frame.Kind == protocol.KindEvent && ev.frame.Verb == protocol.EventProgress:
			// Liveness: the deadline moves to at least one step ahead.
			timer.Reset(max(timeout, s.cfg.CommandTimeout))
			continue
		case ev.frame.Kind == protocol.KindEvent:
			continue
		case ev.frame.Seq == 0 && ev.frame.Verb == protocol.VerbFrame:
			return nil, fmt.Errorf("seq %d: board could not read the request: %w", seq, ev.frame.Err()), true
		case ev.frame.Seq != seq || ev.frame.Verb != verb:
			// An answer to an earlier attempt that raced the seq change.
			s.mu.Lock()
			s.stats.Stale++
			s.mu.Unlock()
			continue
		case ev.frame.Kind == protocol.KindError:
			rerr := ev.frame.Err()
			var re *protocol.RemoteError
			if errors.As(rerr, &re) && re.Code == protocol.CodeBusy {
				if !sleepCtx(ctx, 100*time.Millisecond) {
					return nil, ctx.Err(), false
				}
			}
			return nil, rerr, errors.As(rerr, &re) && (re.Code == protocol.CodeBadCRC || re.Code == protocol.CodeBadFrame || re.Code == protocol.CodeBusy)
		default:
			return ev.frame, nil, false
		}
	}
}

// deadline returns the session's attempt timer set to fire after d;
// callMu must be held. Stop it when the attempt ends.
func (s *Session) deadline(d time.Duration) *time.Timer {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		// A stopped or reset timer delivers no stale tick (Go 1.23+).
		s.timer.Reset(d)
	}
	return s.timer
}

var errNoPort = errors.New("port is not open")

// unverifiedError is what write returns for a request other than HELLO on
// a re-opened port whose board has not answered HELLO yet.
type unverifiedError struct{ path string }

func (e *unverifiedError) Error() string {
	return "port " + e.path + " was re-opened and the board behind it has not answered HELLO yet"
}

// loseBoard marks the board lost for good with err (which wraps
// ErrBoardLost), closes its port so nothing more is written to it, and
// returns err. The reader goroutine exits when its read fails.
func (s *Session) loseBoard(err error) error {
	s.mu.Lock()
	if s.lost != nil {
		err = s.lost
		s.mu.Unlock()
		return err
	}
	s.lost = err
	p := s.port
	s.port = nil
	s.mu.Unlock()
	s.logf("%v", err)
	if p != nil {
		p.Close()
	}
	return err
}

// verify runs HELLO on a re-opened port before anything else is written
// to it (see Session.unverified); it does nothing when the port was not
// re-opened since the last HELLO.
func (s *Session) verify(ctx context.Context, w *waiter) error {
	s.mu.Lock()
	unverified := s.unverified
	s.mu.Unlock()
	if !unverified {
		return nil
	}
	return s.hello(ctx, w)
}

func (s *Session) write(f *protocol.Frame) error {
	s.mu.Lock()
	p, max, lost, unverified, path := s.port, s.txMax, s.lost, s.unverified, s.path
	s.mu.Unlock()
	if lost != nil {
		return lost
	}
	if unverified && f.Verb != protocol.VerbHello {
		return fmt.Errorf("%s not sent: %w", f.Verb, &unverifiedError{path: path})
	}
	b, err := protocol.AppendEncode(s.wbuf[:0], f, max)
	if err != nil {
		return err
	}
	s.wbuf = b
	if p == nil {
		return errNoPort
	}
	n, err := p.Write(b)
	s.mu.Lock()
	s.stats.BytesOut += n
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// waitPort waits for a vanished port to come back or be declared lost.
func (s *Session) waitPort(ctx context.Context, w *waiter) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		case ev := <-w.ch:
			switch ev.state {
			case portBack:
				return nil
			case portLost:
				return ev.err
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ---- handshake and reset ----

// hello runs the HELLO handshake and records the board's answer. A READY
// during it (the board was still booting) restarts it, at most twice.
func (s *Session) hello(ctx context.Context, w *waiter) error {
	var f *protocol.Frame
	var err error
	for i := 0; i < 3; i++ {
		f, err = s.roundTrip(ctx, w, protocol.VerbHello,
			[]protocol.Arg{protocol.Int("proto", protocol.Version), protocol.Int("max", int64(s.cfg.MaxFrame))})
		var rb *rebootError
		if !errors.As(err, &rb) {
			break
		}
	}
	var info BoardInfo
	if err == nil {
		info, err = parseHello(f)
	} else {
		err = fmt.Errorf("HELLO: %w", err)
	}
	s.mu.Lock()
	unverified, path, old := s.unverified, s.path, s.info.MAC
	s.mu.Unlock()
	if err != nil {
		if unverified && !errors.Is(err, ErrBoardLost) && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
			// Whatever is behind the re-opened port is not our board, or
			// not one that answers: close it and write nothing more.
			return s.loseBoard(fmt.Errorf("%w: no board confirmed its identity on re-opened %s (%w); port closed", ErrBoardLost, path, err))
		}
		return err
	}
	if old != "" && info.MAC != old {
		// The port now leads to another board (a re-used device node, a
		// board swapped on the bench): nothing said to this session holds.
		return s.loseBoard(fmt.Errorf("%w: a different board answered on %s (MAC %s, was %s); port closed", ErrBoardLost, path, info.MAC, old))
	}
	s.mu.Lock()
	s.info = info
	s.txMax = min(s.cfg.MaxFrame, info.MaxFrame)
	s.rebooted, s.bounced, s.unverified = "", false, false
	s.mu.Unlock()
	return nil
}

func parseHello(f *protocol.Frame) (BoardInfo, error) {
	proto, err := f.Int("proto")
	if err != nil {
		return BoardInfo{}, fmt.Errorf("HELLO: %w", err)
	}
	if proto < 1 || proto > protocol.Version {
		return BoardInfo{}, fmt.Errorf("HELLO: board speaks protocol %d, host speaks 1..%d", proto, protocol.Version)
	}
	info := BoardInfo{Proto: int(proto), Firmware: f.String("fw"), FirmwareVersion: f.String("fw_version"),
		Board: f.String("board"), Chip: f.String("chip"), MAC: f.String("mac"), Dialect: f.String("dialect")}
	info.MaxFrame = protocol.DefaultMaxFrame
	if f.Has("max") {
		n, err := f.Int("max")
		if err != nil {
			return BoardInfo{}, fmt.Errorf("HELLO: %w", err)
		}
		if n < protocol.MinMaxFrame {
			return BoardInfo{}, fmt.Errorf("HELLO: board max frame %d is below the minimum %d", n, protocol.MinMaxFrame)
		}
		info.MaxFrame = int(n)
	}
	if f.Has("blob_max") {
		n, err := f.Int("blob_max")
		if err != nil {
			return BoardInfo{}, fmt.Errorf("HELLO: %w", err)
		}
		info.BlobMax = int(n)
	}
	for _, c := range strings.Split(f.String("caps"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			info.Caps = append(info.Caps, c)
		}
	}
	return info, nil
}

// Reset reboots the board with its profile's reset method, skips its boot
// output, waits for READY and handshakes again.
func (s *Session) Reset(ctx context.Context) error {
	s.callMu.Lock()
	defer s.callMu.Unlock()
	if s.isClosing() {
		return ErrClosed
	}
	s.mu.Lock()
	lost := s.lost
	s.mu.Unlock()
	if lost != nil {
		return fmt.Errorf("reset: %w", lost)
	}
	if err := s.ready(ctx, true); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := s.reset(ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}

// reset runs the profile's reset method; callMu must be held.
func (s *Session) reset(ctx context.Context) error {
	w := s.begin()
	defer s.end()
	s.mu.Lock()
	s.rebooted, s.bounced = "", false
	s.mu.Unlock()
	released, err := s.hardReset(ctx)
	if errors.Is(err, errResetUnsupported) {
		s.logf("warning: %v; resetting with the protocol RESET verb instead", err)
		_, err = s.softReset(ctx, w)
	} else if err == nil && s.cfg.Profile.Reset == boards.ResetNone {
		_, err = s.softReset(ctx, w)
	}
	if err != nil {
		return err
	}
	return s.afterReset(ctx, w, false, released)
}

// hardReset drives the reset lines; with ResetNone it does nothing. It
// returns when EN was released: a READY read before then was sent before
// the reset (the chip is silent while EN is held low).
func (s *Session) hardReset(ctx context.Context) (time.Time, error) {
	switch s.cfg.Profile.Reset {
	case boards.ResetNone:
		return time.Time{}, nil
	case boards.ResetSim:
		if s.cfg.Port == "" || rfc2217.IsName(s.cfg.Port) {
			return time.Time{}, fmt.Errorf("sim reset: %w (no port symlink to find the control socket by)", errResetUnsupported)
		}
		c, err := dialCtl(ctx, s.cfg.Port)
		if err != nil {
			return time.Time{}, fmt.Errorf("sim reset: %w", err)
		}
		defer c.Close()
		released, err := runReset(ctx, c, HardResetSequence(false))
		if err != nil {
			return time.Time{}, fmt.Errorf("sim reset: %w", err)
		}
		return released, nil
	case boards.ResetClassic, boards.ResetUSBJTAG:
		s.mu.Lock()
		p := s.port
		s.mu.Unlock()
		if p == nil {
			return time.Time{}, fmt.Errorf("%s reset: %w", s.cfg.Profile.Reset, errNoPort)
		}
		released, err := runReset(ctx, p, HardResetSequence(s.cfg.Profile.Reset == boards.ResetUSBJTAG))
		if err != nil {
			if IsPortGone(err) && s.cfg.Profile.Reenumerates {
				return released, nil // the port went away with the chip, as expected
			}
			return time.Time{}, fmt.Errorf("%s reset: %w", s.cfg.Profile.Reset, err)
		}
		return released, nil
	}
	return time.Time{}, fmt.Errorf("reset method %q: %w", s.cfg.Profile.Reset, errResetUnsupported)
}

// runReset runs a hard reset sequence whose last step releases EN and
// returns the time of that release.
func runReset(ctx context.Context, lines modemLines, seq []ResetStep) (time.Time, error) {
	if err := runSequence(ctx, lines, seq[:len(seq)-1]); err != nil {
		return time.Time{}, err
	}
	released := time.Now()
	return released, runSequence(ctx, lines, seq[len(seq)-1:])
}

// softReset sends RESET. A READY that arrives before the OK counts as done.
func (s *Session) softReset(ctx context.Context, w *waiter) (*protocol.Frame, error) {
	f, err := s.roundTrip(ctx, w, protocol.VerbReset, nil)
	var rb *rebootError
	if errors.As(err, &rb) {
		if !rb.bounced {
			// READY came before the OK: tell afterReset not to wait for it.
			s.mu.Lock()
			s.rebooted = "ready-seen"
			s.mu.Unlock()
		}
		return protocol.NewOK(0, protocol.VerbReset), nil
	}
	if err != nil {
		return nil, fmt.Errorf("RESET: %w", err)
	}
	return f, nil
}

// afterReset waits for READY (skipping boot output, which the reader keeps
// as device output), then handshakes. Without READY by ReadyTimeout it
// tries HELLO anyway: the board may have booted before we listened.
func (s *Session) afterReset(ctx context.Context, w *waiter, readySeen bool, notBefore time.Time) error {
	s.mu.Lock()
	seen := readySeen || s.rebooted != "" || s.bounced
	s.rebooted, s.bounced = "", false
	s.mu.Unlock()
	if !seen {
		if err := s.waitReady(ctx, w, notBefore); err != nil {
			return err
		}
	}
	return s.hello(ctx, w)
}

func (s *Session) waitReady(ctx context.Context, w *waiter, notBefore time.Time) error {
	s.mu.Lock()
	w.seq = -1
	s.mu.Unlock()
	timer := time.NewTimer(s.cfg.ReadyTimeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		case <-timer.C:
			s.logf("no READY within %v after reset; trying HELLO", s.cfg.ReadyTimeout)
			return nil
		case ev := <-w.ch:
			switch {
			case ev.state == portLost:
				return ev.err
			case ev.state == portDown:
				// A re-enumerating board: keep waiting through the re-open.
				timer.Reset(s.cfg.ReconnectTimeout + s.cfg.ReadyTimeout)
			case ev.frame != nil && ev.frame.Kind == protocol.KindEvent && ev.frame.Verb == protocol.EventReady:
				if ev.at.Before(notBefore) {
					continue // sent before the reset
				}
				return nil
			}
		}
	}
}
