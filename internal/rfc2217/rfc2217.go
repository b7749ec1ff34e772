// Package rfc2217 is a client for serial ports exported over RFC 2217
// (Telnet Com Port Control Option), e.g. by ser2net ("accepter:
// telnet(rfc2217),tcp,PORT"). A *Port has the method set and the semantics
// of go.bug.st/serial's Port, so code written for a local serial port works
// unchanged on a remote one.
//
// Differences from a local go.bug.st/serial port, all following from the
// protocol:
//   - Dial does not touch DTR/RTS (go.bug.st/serial asserts both on open).
//   - SetDTR/SetRTS wait up to Options.ControlTimeout for the server's
//     SET-CONTROL answer and return an error wrapping ErrNoAnswer if none
//     arrives, unless Options.IgnoreSetControlAnswer is set. ser2net sends
//     no answer when setting the line fails, e.g. on a pty (ser2net
//     dataxfer.c sergensio_val_set logs the error and returns; observed with
//     ser2net 4.3.11), so callers should treat ErrNoAnswer like ENOTTY from a
//     local pty: "modem lines not supported".
//   - Drain returns at once: RFC 2217 has no drain command.
//   - Errors after Close wrap ErrClosed; a connection closed by the server
//     wraps io.EOF (or the network error, e.g. ECONNRESET). Neither is a
//     *serial.PortError (its code field cannot be set outside
//     go.bug.st/serial): callers test errors.Is(err, ErrClosed) and
//     errors.Is(err, io.EOF).
package rfc2217

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Scheme is the port-name prefix that selects this package: "rfc2217://host:port".
const Scheme = "rfc2217://"

// Defaults applied by Dial for zero Options fields.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultControlTimeout = time.Second
	DefaultWriteTimeout   = 10 * time.Second
)

var (
	// ErrClosed is wrapped by errors from a Port that has been closed,
	// including a Read that was blocked when Close was called.
	ErrClosed = errors.New("port closed")
	// ErrNoAnswer is wrapped by errors from requests the server did not
	// answer within Options.ControlTimeout.
	ErrNoAnswer = errors.New("no answer from RFC 2217 server")
	// ErrRefused is returned by Dial when the server refuses COM-PORT-OPTION
	// (a plain telnet server, or ser2net without "telnet(rfc2217)").
	ErrRefused = errors.New("server refused COM-PORT-OPTION")
	// ErrNoModemState is returned by GetModemStatusBits before the server
	// has sent a NOTIFY-MODEMSTATE.
	ErrNoModemState = errors.New("server has not reported the modem state")
)

// Options configures Dial.
type Options struct {
	// BaudRate, DataBits, Parity and StopBits are sent with SetMode during
	// Dial. BaudRate 0 leaves the server's line settings unchanged;
	// DataBits 0 means 8.
	BaudRate int
	DataBits int
	Parity   serial.Parity
	StopBits serial.StopBits
	// DialTimeout bounds the TCP connect and the telnet negotiation
	// (0 = DefaultDialTimeout). A context deadline, if earlier, wins.
	DialTimeout time.Duration
	// ControlTimeout bounds the wait for the server's answer to SetMode,
	// SetDTR and SetRTS (0 = DefaultControlTimeout).
	ControlTimeout time.Duration
	// WriteTimeout bounds each write to the connection (0 = DefaultWriteTimeout).
	WriteTimeout time.Duration
	// IgnoreSetControlAnswer makes SetDTR/SetRTS return after sending the
	// request without waiting for an answer (pyserial's ign_set_control;
	// also set by the URL query "?ign_set_control").
	IgnoreSetControlAnswer bool
}

// Port is a serial port reached over RFC 2217. It implements serial.Port.
// Methods are safe for concurrent use; Read is meant for one goroutine at a
// time (concurrent Reads are serialised).
type Port struct {
	conn net.Conn
	addr string
	opts Options

	closeOnce sync.Once
	closed    chan struct{}

	wmu sync.Mutex // serialises writes on conn

	rmu    sync.Mutex // held while reading conn and running the parser
	parser parser
	raw    []byte

	ctl sync.Mutex // one control request in flight at a time

	mu          sync.Mutex // guards the fields below
	rbuf        []byte     // received data not yet returned by Read
	readTimeout time.Duration
	negOut      []byte // negotiation replies not yet written
	us, him     [256]optState
	refused     bool
	waiter      *waiter
	modem       byte
	haveModem   bool
	signature   string
	notify      chan struct{} // cap 1; signalled after each parse
}

// waiter collects server answers (code-100) for the codes in want.
type waiter struct {
	want []byte
	got  []answer
}

type answer struct {
	cmd   byte
	value []byte
}

var _ serial.Port = (*Port)(nil)

// IsName reports whether a port name selects RFC 2217 ("rfc2217://...").
func IsName(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), Scheme)
}

// ParseAddr splits "host:port" or "rfc2217://host:port[?ign_set_control]"
// into the TCP address and the ign_set_control flag.
func ParseAddr(addr string) (hostport string, ignoreSetControl bool, err error) {
	hostport = addr
	if IsName(addr) {
		u, err := url.Parse(addr)
		if err != nil {
			return "", false, fmt.Errorf("parse %q: %w", addr, err)
		}
		if u.Path != "" && u.Path != "/" {
			return "", false, fmt.Errorf("parse %q: unexpected path %q", addr, u.Path)
		}
		for k := range u.Query() {
			if k != "ign_set_control" {
				return "", false, fmt.Errorf("parse %q: unknown option %q (known: ign_set_control)", addr, k)
			}
			ignoreSetControl = true
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", false, fmt.Errorf("parse %q: want host:port: %w", addr, err)
	}
	if host == "" || port == "" {
		return "", false, fmt.Errorf("parse %q: want host:port", addr)
	}
	return hostport, ignoreSetControl, nil
}

// Dial connects to an RFC 2217 server, negotiates COM-PORT-OPTION, BINARY
// (both directions) and SUPPRESS-GO-AHEAD, and, if opts.BaudRate > 0, sets
// the line parameters. addr is "host:port" or "rfc2217://host:port", with
// optional "?ign_set_control". Cancelling ctx aborts Dial; it has no effect
// on the returned Port.
func Dial(ctx context.Context, addr string, opts Options) (*Port, error) {
	hostport, ign, err := ParseAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("rfc2217 dial: %w", err)
	}
	if ign {
		opts.IgnoreSetControlAnswer = true
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.ControlTimeout <= 0 {
		opts.ControlTimeout = DefaultControlTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	deadline := time.Now().Add(opts.DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("rfc2217 dial %s: %w", hostport, err)
	}
	p := &Port{
		conn:        conn,
		addr:        hostport,
		opts:        opts,
		closed:      make(chan struct{}),
		raw:         make([]byte, 4096),
		readTimeout: serial.NoTimeout,
		notify:      make(chan struct{}, 1),
	}
	p.parser.onCommand = p.onCommand
	p.parser.onSub = p.onSub
	// Closing the conn on cancellation unblocks any read or write below.
	stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
	err = p.negotiate(deadline)
	if err == nil && opts.BaudRate > 0 {
		err = p.SetMode(&serial.Mode{BaudRate: opts.BaudRate, DataBits: opts.DataBits, Parity: opts.Parity, StopBits: opts.StopBits})
	}
	if !stop() || err != nil {
		_ = p.Close()
		if err == nil || dctx.Err() != nil {
			err = fmt.Errorf("rfc2217 dial %s: %w", hostport, context.Cause(dctx))
		}
		return nil, err
	}
	return p, nil
}

// negotiate sends the client's option requests and waits until the server
// agrees to COM-PORT-OPTION.
func (p *Port) negotiate(deadline time.Time) error {
	p.mu.Lock()
	for _, opt := range []byte{optComPort, optBinary, optSGA} {
		p.us[opt] = optWantYes
	}
	for _, opt := range []byte{optBinary, optSGA} {
		p.him[opt] = optWantYes
	}
	p.mu.Unlock()
	hello := []byte{
		iac, will, optComPort,
		iac, will, optBinary, iac, do, optBinary,
		iac, will, optSGA, iac, do, optSGA,
	}
	if err := p.writeRaw(hello); err != nil {
		return fmt.Errorf("rfc2217 %s: negotiate: %w", p.addr, err)
	}
	err := p.wait(deadline, func() (bool, error) {
		if p.refused {
			return false, ErrRefused
		}
		return p.us[optComPort] == optYes, nil
	})
	if err != nil {
		return fmt.Errorf("rfc2217 %s: negotiate: %w", p.addr, err)
	}
	return nil
}

// onCommand runs the RFC 1143 option negotiation for one received command.
// Called by the parser with rmu held.
func (p *Port) onCommand(verb, opt byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch verb {
	case do, dont:
		// DO/DONT ask us to enable or disable an option on our side; we
		// answer WILL/WONT.
		p.answerOption(&p.us[opt], verb == do, opt, will, wont)
		if verb == dont && opt == optComPort {
			p.refused = true
		}
	case will, wont:
		// WILL/WONT announce the server's side; we answer DO/DONT.
		p.answerOption(&p.him[opt], verb == will, opt, do, dont)
	}
}

// answerOption runs the RFC 1143 "Q method" for one side of an option: on a
// request to enable it agrees (yes) when the option is supported and
// refuses (no) otherwise; on a request to disable it acknowledges. A
// request that only confirms what was asked for gets no answer. Called with
// mu held.
func (p *Port) answerOption(st *optState, enable bool, opt, yes, no byte) {
	if enable {
		switch *st {
		case optWantYes:
			*st = optYes
		case optNo:
			if supported(opt) {
				*st = optYes
				p.negOut = append(p.negOut, iac, yes, opt)
			} else {
				p.negOut = append(p.negOut, iac, no, opt)
			}
		}
		return
	}
	switch *st {
	case optYes:
		*st = optNo
		p.negOut = append(p.negOut, iac, no, opt)
	case optWantYes:
		*st = optNo
	}
}

// onSub handles a server subnegotiation. Called by the parser with rmu held.
func (p *Port) onSub(data []byte) {
	if len(data) < 2 || data[0] != optComPort || data[1] < serverCodeOffset {
		return
	}
	cmd, value := data[1]-serverCodeOffset, data[2:]
	p.mu.Lock()
	defer p.mu.Unlock()
	switch cmd {
	case cmdNotifyModem:
		if len(value) > 0 {
			p.modem, p.haveModem = value[0], true
		}
		return
	case cmdSignature:
		p.signature = string(value)
	case cmdNotifyLine:
		return
	}
	if w := p.waiter; w != nil {
		for _, c := range w.want {
			if c == cmd {
				w.got = append(w.got, answer{cmd: cmd, value: append([]byte(nil), value...)})
				break
			}
		}
	}
}

// pump reads the connection once (until deadline; zero = none), runs the
// parser and queues data for Read. Caller holds rmu.
func (p *Port) pump(deadline time.Time) error {
	if err := p.conn.SetReadDeadline(deadline); err != nil {
		return p.opErr("read", err)
	}
	n, err := p.conn.Read(p.raw)
	if n > 0 {
		data := p.parser.feed(p.raw[:n], nil)
		p.mu.Lock()
		p.rbuf = append(p.rbuf, data...)
		p.mu.Unlock()
		p.flushNegotiation()
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
	if err != nil {
		return p.opErr("read", err)
	}
	return nil
}

// opErr wraps the error of a read or write (op) on the connection; once
// the port is closed it is ErrClosed, whatever the connection said.
func (p *Port) opErr(op string, err error) error {
	if p.isClosed() {
		err = ErrClosed
	}
	return fmt.Errorf("rfc2217 %s: %s: %w", p.addr, op, err)
}

// flushNegotiation writes queued negotiation replies unless a writer is
// busy (the writer sends them before its own bytes).
func (p *Port) flushNegotiation() {
	if !p.wmu.TryLock() {
		return
	}
	defer p.wmu.Unlock()
	_ = p.writeLocked(nil)
}

// writeRaw writes b (already telnet-encoded) after any queued negotiation
// replies.
func (p *Port) writeRaw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.writeLocked(b)
}

func (p *Port) writeLocked(b []byte) error {
	p.mu.Lock()
	if len(p.negOut) > 0 {
		b = append(p.negOut, b...)
		p.negOut = nil
	}
	p.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	if err := p.conn.SetWriteDeadline(time.Now().Add(p.opts.WriteTimeout)); err != nil {
		return p.opErr("write", err)
	}
	_, err := p.conn.Write(b)
	if err != nil {
		return p.opErr("write", err)
	}
	return nil
}

// wait pumps the connection (or, while a Read is pumping, waits for it)
// until cond, evaluated with mu held, reports true or an error, or until
// deadline (error wrapping ErrNoAnswer).
func (p *Port) wait(deadline time.Time, cond func() (bool, error)) error {
	for {
		p.mu.Lock()
		ok, err := cond()
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p.isClosed() {
			return ErrClosed
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return ErrNoAnswer
		}
		if p.rmu.TryLock() {
			// Short slices, so a Read that wants the connection waits at
			// most pumpSlice, not the whole control timeout.
			slice := time.Now().Add(pumpSlice)
			if deadline.Before(slice) {
				slice = deadline
			}
			err := p.pump(slice)
			p.rmu.Unlock()
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return err
			}
			continue
		}
		// A Read owns the connection and runs the parser for us; re-check
		// after each parse, and poll in case that Read returns and nobody
		// is reading any more.
		t := time.NewTimer(min(remaining, 5*time.Millisecond))
		select {
		case <-p.notify:
		case <-t.C:
		case <-p.closed:
		}
		t.Stop()
	}
}

// pumpSlice bounds how long a control request reads the connection at a
// time while it waits for an answer.
const pumpSlice = 20 * time.Millisecond

// request sends SB COM-PORT-OPTION cmd value and, if check is non-nil, waits
// for an answer for which check returns done.
func (p *Port) request(what string, cmd byte, value []byte, check func(value []byte) (done bool, err error)) error {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	if p.isClosed() {
		return fmt.Errorf("rfc2217 %s: %s: %w", p.addr, what, ErrClosed)
	}
	w := &waiter{want: []byte{cmd}}
	if check != nil {
		p.mu.Lock()
		p.waiter = w
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.waiter = nil
			p.mu.Unlock()
		}()
	}
	if err := p.writeRaw(subnegotiation(cmd, value...)); err != nil {
		return fmt.Errorf("rfc2217 %s: %s: %w", p.addr, what, err)
	}
	if check == nil {
		return nil
	}
	err := p.wait(time.Now().Add(p.opts.ControlTimeout), func() (bool, error) {
		for len(w.got) > 0 {
			a := w.got[0]
			w.got = w.got[1:]
			if done, err := check(a.value); done || err != nil {
				return done, err
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("rfc2217 %s: %s: %w", p.addr, what, err)
	}
	return nil
}

// setMode sends all four line-setting requests, then waits for all answers.
func (p *Port) setMode(mode *serial.Mode) error {
	if mode == nil {
		return fmt.Errorf("rfc2217 %s: set mode: nil mode", p.addr)
	}
	if mode.BaudRate <= 0 {
		return fmt.Errorf("rfc2217 %s: set mode: invalid baud rate %d", p.addr, mode.BaudRate)
	}
	bits := mode.DataBits
	if bits == 0 {
		bits = 8
	}
	if bits < 5 || bits > 8 {
		return fmt.Errorf("rfc2217 %s: set mode: invalid data bits %d", p.addr, mode.DataBits)
	}
	if mode.Parity < serial.NoParity || mode.Parity > serial.SpaceParity {
		return fmt.Errorf("rfc2217 %s: set mode: invalid parity %d", p.addr, mode.Parity)
	}
	var stop byte
	switch mode.StopBits {
	case serial.OneStopBit:
		stop = 1
	case serial.TwoStopBits:
		stop = 2
	case serial.OnePointFiveStopBits:
		stop = 3
	default:
		return fmt.Errorf("rfc2217 %s: set mode: invalid stop bits %d", p.addr, mode.StopBits)
	}
	b := uint32(mode.BaudRate)
	want := map[byte][]byte{
		cmdSetBaudRate: {byte(b >> 24), byte(b >> 16), byte(b >> 8), byte(b)},
		cmdSetDataSize: {byte(bits)},
		cmdSetParity:   {byte(mode.Parity) + 1}, // RFC 2217: 1 NONE, 2 ODD, 3 EVEN, 4 MARK, 5 SPACE
		cmdSetStopSize: {stop},                  // RFC 2217: 1, 2, 3 = 1.5
	}
	order := []byte{cmdSetBaudRate, cmdSetDataSize, cmdSetParity, cmdSetStopSize}
	names := map[byte]string{cmdSetBaudRate: "baud rate", cmdSetDataSize: "data size", cmdSetParity: "parity", cmdSetStopSize: "stop size"}

	p.ctl.Lock()
	defer p.ctl.Unlock()
	if p.isClosed() {
		return fmt.Errorf("rfc2217 %s: set mode: %w", p.addr, ErrClosed)
	}
	w := &waiter{want: order}
	p.mu.Lock()
	p.waiter = w
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.waiter = nil
		p.mu.Unlock()
	}()
	var msg []byte
	for _, c := range order {
		msg = append(msg, subnegotiation(c, want[c]...)...)
	}
	if err := p.writeRaw(msg); err != nil {
		return fmt.Errorf("rfc2217 %s: set mode: %w", p.addr, err)
	}
	pending := map[byte]bool{cmdSetBaudRate: true, cmdSetDataSize: true, cmdSetParity: true, cmdSetStopSize: true}
	err := p.wait(time.Now().Add(p.opts.ControlTimeout), func() (bool, error) {
		for _, a := range w.got {
			if string(a.value) != string(want[a.cmd]) {
				return false, fmt.Errorf("server set %s to % x, requested % x", names[a.cmd], a.value, want[a.cmd])
			}
			delete(pending, a.cmd)
		}
		w.got = w.got[:0]
		return len(pending) == 0, nil
	})
	if err != nil {
		var missing []string
		for _, c := range order {
			if pending[c] {
				missing = append(missing, names[c])
			}
		}
		if errors.Is(err, ErrNoAnswer) {
			return fmt.Errorf("rfc2217 %s: set mode %d/%d/%d/%d (no answer for %s): %w",
				p.addr, mode.BaudRate, bits, mode.Parity, mode.StopBits, strings.Join(missing, ", "), err)
		}
		return fmt.Errorf("rfc2217 %s: set mode: %w", p.addr, err)
	}
	return nil
}

// SetMode sets baud rate, data bits, parity and stop bits with SET-BAUDRATE,
// SET-DATASIZE, SET-PARITY and SET-STOPSIZE, and waits for the server to
// confirm each value (error if it answers a different one or not at all
// within Options.ControlTimeout). InitialStatusBits is ignored, as in
// go.bug.st/serial's SetMode.
func (p *Port) SetMode(mode *serial.Mode) error { return p.setMode(mode) }

// Read reads data bytes (telnet commands stripped, IAC IAC turned into 0xFF).
// Like go.bug.st/serial it returns (0, nil) when the read timeout set with
// SetReadTimeout expires without data; with serial.NoTimeout (the default)
// it blocks until data arrives, the server closes the connection (error
// wrapping io.EOF, or the network error such as ECONNRESET) or Close is
// called (error wrapping ErrClosed).
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	p.mu.Lock()
	timeout := p.readTimeout
	p.mu.Unlock()
	var deadline time.Time
	switch {
	case timeout == 0:
		// A deadline in the past fails before looking at the socket; give
		// the poll a moment so data already received is returned.
		deadline = time.Now().Add(time.Millisecond)
	case timeout > 0:
		deadline = time.Now().Add(timeout)
	}
	for {
		p.mu.Lock()
		if len(p.rbuf) > 0 {
			n := copy(b, p.rbuf)
			p.rbuf = p.rbuf[:copy(p.rbuf, p.rbuf[n:])]
			p.mu.Unlock()
			return n, nil
		}
		p.mu.Unlock()
		if p.isClosed() {
			return 0, fmt.Errorf("rfc2217 %s: read: %w", p.addr, ErrClosed)
		}
		if err := p.pump(deadline); err != nil {
			p.mu.Lock()
			buffered := len(p.rbuf) > 0
			p.mu.Unlock()
			if buffered {
				continue // return the data first, the error on the next call
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, nil
			}
			return 0, err
		}
	}
}

// Write sends b as data, doubling each 0xFF byte, and returns len(b) on
// success. A write that does not complete within Options.WriteTimeout fails.
func (p *Port) Write(b []byte) (int, error) {
	if p.isClosed() {
		return 0, fmt.Errorf("rfc2217 %s: write: %w", p.addr, ErrClosed)
	}
	enc := escape(make([]byte, 0, len(b)+8), b)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.Lock()
	neg := p.negOut
	p.negOut = nil
	p.mu.Unlock()
	if len(neg) > 0 {
		if err := p.writeLocked(neg); err != nil {
			return 0, err
		}
	}
	if err := p.conn.SetWriteDeadline(time.Now().Add(p.opts.WriteTimeout)); err != nil {
		return 0, p.opErr("write", err)
	}
	n, err := p.conn.Write(enc)
	if err != nil {
		return unescapedLen(b, n), p.opErr("write", err)
	}
	return len(b), nil
}

// SetReadTimeout sets the Read timeout; serial.NoTimeout (-1, the default)
// blocks, 0 polls (returns data already received, waiting at most 1 ms).
func (p *Port) SetReadTimeout(t time.Duration) error {
	if t < 0 && t != serial.NoTimeout {
		return fmt.Errorf("rfc2217 %s: invalid read timeout %v", p.addr, t)
	}
	p.mu.Lock()
	p.readTimeout = t
	p.mu.Unlock()
	return nil
}

// SetDTR asserts (true) or clears DTR with SET-CONTROL 8/9 and waits for the
// server's answer (see Options.ControlTimeout, IgnoreSetControlAnswer).
func (p *Port) SetDTR(dtr bool) error {
	return p.setControl("set DTR", dtr, ctlDTROn, ctlDTROff)
}

// SetRTS asserts (true) or clears RTS with SET-CONTROL 11/12 and waits for
// the server's answer (see Options.ControlTimeout, IgnoreSetControlAnswer).
func (p *Port) SetRTS(rts bool) error {
	return p.setControl("set RTS", rts, ctlRTSOn, ctlRTSOff)
}

func (p *Port) setControl(what string, on bool, onVal, offVal byte) error {
	val := offVal
	if on {
		val = onVal
	}
	what = fmt.Sprintf("%s=%v", what, on)
	var check func([]byte) (bool, error)
	if !p.opts.IgnoreSetControlAnswer {
		check = func(v []byte) (bool, error) {
			if len(v) != 1 || (v[0] != onVal && v[0] != offVal) {
				return false, nil // an answer to another SET-CONTROL (e.g. break)
			}
			if v[0] != val {
				return false, fmt.Errorf("server reports state %d, requested %d", v[0], val)
			}
			return true, nil
		}
	}
	return p.request(what, cmdSetControl, []byte{val}, check)
}

// Break sends SET-CONTROL break-on, waits d, then break-off. Answers are not
// awaited (ser2net answers break requests with its current break state).
func (p *Port) Break(d time.Duration) error {
	if err := p.request("break on", cmdSetControl, []byte{ctlBreakOn}, nil); err != nil {
		return err
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-p.closed:
		t.Stop()
		return fmt.Errorf("rfc2217 %s: break: %w", p.addr, ErrClosed)
	}
	return p.request("break off", cmdSetControl, []byte{ctlBreakOff}, nil)
}

// Drain returns nil at once: RFC 2217 has no drain command, and Write
// returns once the bytes are handed to the TCP connection.
func (p *Port) Drain() error {
	if p.isClosed() {
		return fmt.Errorf("rfc2217 %s: drain: %w", p.addr, ErrClosed)
	}
	return nil
}

// ResetInputBuffer discards data received but not yet read and asks the
// server to purge its receive buffer (PURGE-DATA 1). The answer is not
// awaited (ser2net 4.3 does not send one). Bytes already in flight on the
// network can still arrive afterwards.
func (p *Port) ResetInputBuffer() error {
	p.mu.Lock()
	p.rbuf = p.rbuf[:0]
	p.mu.Unlock()
	return p.request("purge input", cmdPurgeData, []byte{purgeRx}, nil)
}

// ResetOutputBuffer asks the server to purge its transmit buffer
// (PURGE-DATA 2). The answer is not awaited.
func (p *Port) ResetOutputBuffer() error {
	return p.request("purge output", cmdPurgeData, []byte{purgeTx}, nil)
}

// GetModemStatusBits returns the modem lines from the server's latest
// NOTIFY-MODEMSTATE (ser2net sends one right after negotiation), or an
// error wrapping ErrNoModemState if none has arrived yet.
func (p *Port) GetModemStatusBits() (*serial.ModemStatusBits, error) {
	p.mu.Lock()
	m, ok := p.modem, p.haveModem
	p.mu.Unlock()
	if p.isClosed() {
		return nil, fmt.Errorf("rfc2217 %s: modem status: %w", p.addr, ErrClosed)
	}
	if !ok {
		return nil, fmt.Errorf("rfc2217 %s: modem status: %w", p.addr, ErrNoModemState)
	}
	return &serial.ModemStatusBits{
		CTS: m&modemCTS != 0,
		DSR: m&modemDSR != 0,
		RI:  m&modemRI != 0,
		DCD: m&modemDCD != 0,
	}, nil
}

// Signature returns the server's SIGNATURE answer, if it has sent one
// ("ser2net" for ser2net); empty otherwise.
func (p *Port) Signature() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signature
}

// Addr returns the server's host:port.
func (p *Port) Addr() string { return p.addr }

// Close closes the connection. A Read blocked in another goroutine returns
// an error wrapping ErrClosed; Close waits for it to return. Later calls
// return nil.
func (p *Port) Close() error {
	var err error
	p.closeOnce.Do(func() {
		close(p.closed)
		err = p.conn.Close()
		// Wait for a reader to leave (conn.Close woke it up).
		p.rmu.Lock()
		//lint:ignore SA2001 the empty critical section waits for the reader to leave
		p.rmu.Unlock()
		if err != nil {
			err = fmt.Errorf("rfc2217 %s: close: %w", p.addr, err)
		}
	})
	return err
}

func (p *Port) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}
