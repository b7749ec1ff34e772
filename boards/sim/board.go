package sim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// FaultEvent records one fault the simulator injected.
type FaultEvent struct {
	Time   time.Time
	Board  string
	Fault  string // "noise", "corrupt", "drop", "brownout", "hang", "slow", "overlong", "unplug", "replug", "skew", ...
	Detail string
}

// Board is one simulated ESP32 on a pseudo-terminal.
type Board struct {
	cfg    Config
	faults Faults
	bugs   map[string]bool
	dir    string // LinkDir
	ownDir bool
	link   string
	ctl    string
	ln     *net.UnixListener
	out    *output

	mu       sync.Mutex
	port     *port
	faultLog []FaultEvent
	conns    map[net.Conn]struct{}

	evc       chan any
	quit      chan struct{}
	exited    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	closeErr  error
}

// Start creates the board's pty, its symlink and control socket, boots it
// (ROM banner, boot log, READY reason=poweron) and returns. The board runs
// until Close or until ctx is done (then it stops; Close still removes its
// symlink and control socket).
func Start(ctx context.Context, cfg Config) (*Board, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	faults, err := ParseFaults(cfg.Faults)
	if err != nil {
		return nil, fmt.Errorf("sim: board %s: %w", cfg.Name, err)
	}
	b := &Board{
		cfg:    cfg,
		faults: faults,
		bugs:   map[string]bool{},
		conns:  map[net.Conn]struct{}{},
		evc:    make(chan any, 16),
		quit:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	for _, x := range cfg.Bugs {
		b.bugs[x] = true
	}
	b.dir = cfg.LinkDir
	if b.dir == "" {
		d, err := os.MkdirTemp("", "hiltest-sim-")
		if err != nil {
			return nil, fmt.Errorf("sim: board %s: %w", cfg.Name, err)
		}
		b.dir, b.ownDir = d, true
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: board %s: link dir: %w", cfg.Name, err)
	}
	b.link = filepath.Join(b.dir, cfg.Name)
	b.ctl = b.link + ".ctl"
	b.out = newOutput(b.quit, cfg.Baud, b.note)

	fail := func(err error) (*Board, error) {
		b.cleanupFiles()
		return nil, fmt.Errorf("sim: board %s: %w", cfg.Name, err)
	}
	if fi, err := os.Lstat(b.link); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return fail(fmt.Errorf("%s exists and is not a symlink", b.link))
	}
	_ = os.Remove(b.ctl)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: b.ctl, Net: "unix"})
	if err != nil {
		return fail(fmt.Errorf("control socket: %w", err))
	}
	b.ln = ln
	p, err := openPort()
	if err != nil {
		ln.Close()
		return fail(err)
	}
	if err := pointLink(b.link, p.path); err != nil {
		p.close()
		ln.Close()
		return fail(err)
	}
	b.port = p
	b.out.setPort(p)

	seed, stream := uint64(cfg.Seed), nameHash(cfg.Name)
	m := &machine{
		b:   b,
		rng: rand.New(rand.NewPCG(seed, stream)),
	}
	m.fr = firer{rng: rand.New(rand.NewPCG(seed, stream^0xfa017)), verbFired: map[string]bool{}}
	b.wg.Add(4)
	go b.acceptLoop()
	go b.readLoop(p)
	go func() {
		defer b.wg.Done()
		b.out.run()
	}()
	go func() {
		defer b.wg.Done()
		defer close(b.exited)
		m.run(ctx)
	}()
	return b, nil
}

// StartBench starts one board per config. On error the boards already
// started are closed.
func StartBench(ctx context.Context, cfgs []Config) ([]*Board, error) {
	seen := map[string]bool{}
	for _, c := range cfgs {
		key := filepath.Join(c.LinkDir, c.Name)
		if c.LinkDir != "" && seen[key] {
			return nil, fmt.Errorf("sim: two boards named %q in %s", c.Name, c.LinkDir)
		}
		seen[key] = true
	}
	boards := make([]*Board, 0, len(cfgs))
	for _, c := range cfgs {
		b, err := Start(ctx, c)
		if err != nil {
			for _, x := range boards {
				x.Close()
			}
			return nil, err
		}
		boards = append(boards, b)
	}
	return boards, nil
}

// Name returns the board's name.
func (b *Board) Name() string { return b.cfg.Name }

// Config returns the board's configuration with defaults filled in.
func (b *Board) Config() Config { return b.cfg }

// MAC returns the board's station MAC.
func (b *Board) MAC() string { return b.cfg.MAC }

// Dialect returns the SAS dialect the board's firmware emits.
func (b *Board) Dialect() string { return b.cfg.Dialect }

// RegistrationID suggests a DPS registration id for this board.
func (b *Board) RegistrationID() string { return RegistrationIDFor(b.cfg.MAC) }

// Path returns the current pty device (/dev/pts/N), "" while the port is unplugged.
func (b *Board) Path() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.port == nil {
		return ""
	}
	return b.port.path
}

// Link returns the stable symlink the host opens.
func (b *Board) Link() string { return b.link }

// ControlPath returns the control socket that stands in for DTR/RTS.
func (b *Board) ControlPath() string { return b.ctl }

// Control applies one control-socket command ("rts 1", "dtr 0 rts 1",
// "reset", "unplug 2s", "state") without going through the socket and
// returns the answer line ("ok ..." or "error ...").
func (b *Board) Control(ctx context.Context, line string) (string, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("sim %s: empty control command", b.cfg.Name)
	}
	reply := make(chan string, 1)
	select {
	case b.evc <- evCtl{line: line, reply: reply}:
	case <-b.exited:
		return "", fmt.Errorf("sim %s: board is closed", b.cfg.Name)
	case <-ctx.Done():
		return "", fmt.Errorf("sim %s: control %q: %w", b.cfg.Name, line, ctx.Err())
	}
	select {
	case a := <-reply:
		return a, nil
	case <-b.exited:
		return "", fmt.Errorf("sim %s: board is closed", b.cfg.Name)
	case <-ctx.Done():
		return "", fmt.Errorf("sim %s: control %q: %w", b.cfg.Name, line, ctx.Err())
	}
}

// FaultLog returns the faults injected so far.
func (b *Board) FaultLog() []FaultEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]FaultEvent(nil), b.faultLog...)
}

// Close powers the board off: it stops all its goroutines, closes the pty and
// the control socket and removes the symlink (and the link directory if the
// board made it). It is idempotent and waits for the goroutines.
func (b *Board) Close() error {
	b.closeOnce.Do(func() {
		close(b.quit)
		b.wg.Wait()
		b.closeErr = b.cleanupFiles()
	})
	return b.closeErr
}

func (b *Board) cleanupFiles() error {
	var errs []error
	if b.link != "" {
		if err := os.Remove(b.link); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		_ = os.Remove(filepath.Join(filepath.Dir(b.link), "."+filepath.Base(b.link)+".new"))
	}
	if b.ctl != "" {
		if err := os.Remove(b.ctl); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if b.ownDir {
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Board) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf("sim %s: "+format, append([]any{b.cfg.Name}, args...)...)
	}
}

// note logs a simulator event that is not an injected fault.
func (b *Board) note(format string, args ...any) { b.logf(format, args...) }

// fault records and logs an injected fault.
func (b *Board) fault(name, format string, args ...any) {
	ev := FaultEvent{Time: time.Now(), Board: b.cfg.Name, Fault: name, Detail: fmt.Sprintf(format, args...)}
	b.mu.Lock()
	b.faultLog = append(b.faultLog, ev)
	b.mu.Unlock()
	b.logf("fault %s: %s", name, ev.Detail)
}

// send delivers an event to the state machine unless the board is closing.
func (b *Board) send(ev any) bool {
	select {
	case b.evc <- ev:
		return true
	case <-b.exited:
		return false
	}
}

// Events for the state machine.
type (
	evItem struct {
		p  *port
		it protocol.Item
	}
	evCtl struct {
		line  string
		reply chan string
	}
	evWorkDone struct {
		w      *worker
		resp   *protocol.Frame
		reboot string // "" or the READY reason of the reboot the worker asks for
	}
)

// readLoop is the board's UART receive side for one pty; it ends when the
// pty is closed.
func (b *Board) readLoop(p *port) {
	defer b.wg.Done()
	r := protocol.NewReader(p, MaxFrame)
	for {
		it, err := r.Next() // port.Read waits for input: never ErrNoData
		if err != nil {
			return
		}
		if !b.send(evItem{p: p, it: it}) {
			return
		}
	}
}

// acceptLoop serves the control socket.
func (b *Board) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		if b.conns == nil { // shut down
			b.mu.Unlock()
			c.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go b.serveCtl(c)
	}
}

// serveCtl reads control lines ("rts 1", "dtr 0", "reset", "unplug [DURATION]",
// "state") and answers each with one line ("ok ..." or "error ...").
func (b *Board) serveCtl(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		reply := make(chan string, 1)
		if !b.send(evCtl{line: line, reply: reply}) {
			return
		}
		var ans string
		select {
		case ans = <-reply:
		case <-b.exited:
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte(ans + "\n")); err != nil {
			return
		}
	}
}

// machine is the board's firmware and power state; only its run goroutine
// touches it.
type machine struct {
	b   *Board
	rng *rand.Rand // boot output, noise
	fr  firer      // fault triggers

	gen     uint64
	sess    *session
	running bool // booted into the application and reading requests
	reqN    int

	rts, dtr bool        // control lines as the host set them
	enLow    bool        // held in reset
	enRise   *time.Timer // EN released, the RC delay running

	port      *port
	unplugged bool
	replug    *time.Timer

	hung      bool
	hangTimer *time.Timer

	w *worker // the request in progress
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

func (m *machine) run(ctx context.Context) {
	b := m.b
	m.port = b.port
	defer m.shutdown()
	m.boot("poweron", false)
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.quit:
			return
		case <-timerC(m.replug):
			m.replug = nil
			m.plugIn()
		case <-timerC(m.enRise):
			m.enRise = nil
			io0Low := m.dtr && !m.rts
			m.b.note("EN high: booting (IO0 %s)", lowHigh(io0Low))
			m.boot("hw", io0Low)
		case <-timerC(m.hangTimer):
			m.hangTimer = nil
			if m.hung {
				m.hung = false
				b.fault("hang", "hang over: answering again")
			}
		case ev := <-b.evc:
			switch e := ev.(type) {
			case evItem:
				if e.p == m.port && !m.unplugged {
					m.input(e.it)
				}
			case evCtl:
				e.reply <- m.control(e.line)
			case evWorkDone:
				if e.w == m.w {
					m.w = nil
					if e.w.gen == m.gen && e.w.pl.brownout {
						// The supply sagged while the board worked (a Wi-Fi TX burst):
						// the work is done, the answer never goes out.
						w := e.w
						b.fault("brownout", "request %d (%s %d): brown-out before the answer, reboot", w.pl.n, w.req.Verb, w.req.Seq)
						_ = b.out.write(m.gen, []byte("\r\nBrownout detector was triggered\r\n\r\n"))
						m.boot("brownout", false)
					} else if e.w.gen == m.gen {
						e.w.answer(e.resp)
						if e.reboot != "" {
							m.boot(e.reboot, false)
						}
					}
				}
			}
		}
	}
}

func (m *machine) shutdown() {
	b := m.b
	m.stopWorker()
	if m.replug != nil {
		m.replug.Stop()
	}
	if m.hangTimer != nil {
		m.hangTimer.Stop()
	}
	if m.enRise != nil {
		m.enRise.Stop()
	}
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	if b.port != nil {
		b.port.close()
		b.port = nil
	}
	b.mu.Unlock()
	b.out.setPort(nil)
}

// stopWorker cuts off the request in progress and waits for it.
func (m *machine) stopWorker() {
	if m.w == nil {
		return
	}
	m.w.cancel()
	<-m.w.done
	m.w = nil
}

// powerDown stops the firmware (reset held, brown-out, unplug, restart): no
// output, no input, state lost. With lose set (EN held low, power gone) the
// output still queued for the UART is lost too; a restart the firmware asks
// for (or the ROM's brown-out message) lets it go out first.
func (m *machine) powerDown(lose bool) {
	m.stopWorker()
	m.running = false
	m.hung = false
	if m.hangTimer != nil {
		m.hangTimer.Stop()
		m.hangTimer = nil
	}
	m.gen++
	m.b.out.newBoot(m.gen, lose)
}

// boot runs the ROM and the second-stage bootloader and starts the
// application, which prints READY reason=reason. With download set (IO0 held
// low at reset), the ROM waits for a flasher instead.
func (m *machine) boot(reason string, download bool) {
	m.powerDown(false)
	gen := m.gen
	m.sess = newSession(m.b, gen)
	out := m.b.out
	if !m.b.faults.Noise.Off() && m.fr.fire("noise", Trigger{Rate: m.b.faults.Noise.Rate}, 0, "") {
		junk := romNoise(m.rng)
		m.b.fault("noise", "boot: %d bytes of 74880-baud ROM noise", len(junk))
		_ = out.write(gen, junk)
	}
	_ = out.write(gen, romBanner(reason, download))
	if download {
		m.b.note("booted into download mode (IO0 low at reset): no application")
		return
	}
	_ = out.write(gen, bootLog(m.rng, m.b.cfg, m.sess))
	m.sess.bootDone = time.Now()
	_ = out.event(gen, protocol.EventReady,
		protocol.Int("proto", protocol.Version),
		protocol.String("fw", m.b.cfg.Firmware),
		protocol.String("fw_version", m.b.cfg.FirmwareVersion),
		protocol.String("reason", reason))
	m.running = true
}

// input handles one item from the host.
func (m *machine) input(it protocol.Item) {
	if !m.running || m.hung {
		return // in reset, in the ROM, or hung: the UART input is lost
	}
	b := m.b
	if it.Err != nil {
		seq, verb := frameErrSeqVerb(it.Err)
		_ = b.out.frame(m.gen, protocol.NewError(uint16(seq), verb, it.Err.Code, it.Err.Reason), nil)
		return
	}
	f := it.Frame
	if f == nil || f.Kind != protocol.KindRequest {
		return
	}
	if m.w != nil {
		_ = b.out.frame(m.gen, protocol.NewError(f.Seq, f.Verb, protocol.CodeBusy, "still working on seq "+itoa(int(m.w.req.Seq))), nil)
		return
	}
	m.reqN++
	n, verb, ft := m.reqN, f.Verb, b.faults
	if m.fr.fire("unplug", ft.Unplug, n, verb) {
		b.fault("unplug", "request %d (%s %d): port unplugged for %s", n, verb, f.Seq, ft.UnplugFor)
		m.unplug(ft.UnplugFor)
		return
	}
	if m.fr.fire("hang", ft.Hang, n, verb) {
		if ft.HangFor > 0 {
			b.fault("hang", "request %d (%s %d): hung for %s", n, verb, f.Seq, ft.HangFor)
			m.hangTimer = time.NewTimer(ft.HangFor)
		} else {
			b.fault("hang", "request %d (%s %d): hung until reset", n, verb, f.Seq)
		}
		m.hung = true
		return
	}
	pl := plan{brownout: m.fr.fire("brownout", ft.Brownout, n, verb)}
	if m.fr.fire("slow", ft.Slow, n, verb) {
		pl.slow = ft.SlowDelay
	}
	pl.overlong = m.fr.fire("overlong", ft.Overlong, n, verb)
	pl.noise = m.fr.fire("noise", ft.Noise, n, verb)
	pl.corrupt = m.fr.fire("corrupt", ft.Corrupt, n, verb)
	pl.drop = m.fr.fire("drop", ft.Drop, n, verb)
	pl.seed = m.rng.Uint64()
	pl.n = n
	if inline(f, pl) {
		runInline(m.b, m.sess, m.gen, f, pl)
		return
	}
	m.w = startWorker(m.b, m.sess, m.gen, f, pl)
}

// frameErrSeqVerb recovers seq and verb from a rejected frame for the ERR
// answer: seq 0 and verb FRAME when the seq cannot be read.
func frameErrSeqVerb(fe *protocol.FrameError) (int, string) {
	if fe.Seq < 0 {
		return 0, protocol.VerbFrame
	}
	t := strings.SplitN(string(fe.Line), " ", 5)
	if len(t) >= 4 && validVerbName(t[3]) && t[3] != "" && !strings.HasPrefix(t[3], "*") {
		return fe.Seq, t[3]
	}
	return fe.Seq, protocol.VerbFrame
}

// unplug makes the port disappear for d: pty closed, symlink removed.
func (m *machine) unplug(d time.Duration) {
	b := m.b
	m.powerDown(true)
	// The bridge goes with the cable: its modem lines come back released.
	m.rts, m.dtr, m.enLow = false, false, false
	if m.enRise != nil {
		m.enRise.Stop()
		m.enRise = nil
	}
	m.unplugged = true
	b.out.setPort(nil)
	_ = os.Remove(b.link) // first, so a host that sees the port close finds no link
	b.mu.Lock()
	if b.port != nil {
		b.port.close()
		b.port = nil
	}
	b.mu.Unlock()
	m.port = nil
	m.replug = time.NewTimer(d)
}

// plugIn brings the port back on a new pty, re-points the symlink and boots.
func (m *machine) plugIn() {
	b := m.b
	p, err := openPort()
	if err == nil {
		err = pointLink(b.link, p.path)
		if err != nil {
			p.close()
		}
	}
	if err != nil {
		b.fault("replug", "failed, retrying in 1s: %v", err)
		m.replug = time.NewTimer(time.Second)
		return
	}
	b.mu.Lock()
	b.port = p
	b.wg.Add(1)
	b.mu.Unlock()
	go b.readLoop(p)
	m.port = p
	m.unplugged = false
	b.out.setPort(p)
	b.fault("replug", "port back as %s", p.path)
	m.boot("poweron", false)
}

// control applies one control-socket line. The lines stand in for the modem
// control lines of a USB-serial bridge wired to the ESP32 devkit auto-reset
// circuit: RTS asserted (and DTR not) pulls EN low, DTR asserted (and RTS
// not) pulls IO0 low; both asserted or both released leave EN and IO0 high.
func (m *machine) control(line string) string {
	f := strings.Fields(line)
	switch strings.ToLower(f[0]) {
	case "rts", "dtr":
		if len(f)%2 != 0 || len(f) > 4 {
			return "error want \"rts 0|1\", \"dtr 0|1\" or both on one line"
		}
		rts, dtr := m.rts, m.dtr
		for i := 0; i < len(f); i += 2 {
			v := f[i+1]
			if v != "0" && v != "1" {
				return "error " + f[i] + ": want 0 or 1, got " + strconv.Quote(v)
			}
			switch strings.ToLower(f[i]) {
			case "rts":
				rts = v == "1"
			case "dtr":
				dtr = v == "1"
			default:
				return "error unknown line " + strconv.Quote(f[i])
			}
		}
		m.rts, m.dtr = rts, dtr
		m.applyLines()
		return "ok " + m.state()
	case "reset":
		// A plain hard reset: EN pulsed low with IO0 high.
		m.b.note("control: hard reset")
		m.powerDown(true)
		if m.enRise != nil {
			m.enRise.Stop()
			m.enRise = nil
		}
		m.enLow = false
		if !m.unplugged {
			m.boot("hw", false)
		}
		return "ok " + m.state()
	case "unplug":
		d := m.b.faults.UnplugFor
		if len(f) > 1 {
			x, err := time.ParseDuration(f[1])
			if err != nil || x < 0 {
				return "error bad duration " + strconv.Quote(f[1])
			}
			d = x
		}
		if m.unplugged {
			return "error already unplugged"
		}
		m.b.fault("unplug", "control: port unplugged for %s", d)
		m.unplug(d)
		return "ok " + m.state()
	case "state":
		return "ok " + m.state()
	}
	return "error unknown command " + strconv.Quote(f[0]) + " (want rts 0|1, dtr 0|1, reset, unplug [DURATION], state)"
}

func (m *machine) state() string {
	st := "running"
	switch {
	case m.unplugged:
		st = "unplugged"
	case m.enLow:
		st = "reset"
	case m.enRise != nil:
		st = "booting"
	case m.hung:
		st = "hung"
	case !m.running:
		st = "download"
	}
	return fmt.Sprintf("rts=%d dtr=%d en=%s io0=%s state=%s", b2i(m.rts), b2i(m.dtr),
		lowHigh(m.rts && !m.dtr), lowHigh(m.dtr && !m.rts), st)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func lowHigh(low bool) string {
	if low {
		return "low"
	}
	return "high"
}

// ENDelay is the RC delay of the devkit's EN pin (10 kΩ, 1 µF): EN must
// stay released this long before the chip leaves reset, which is what lets
// esptool's sequences pass through a transient (DTR, RTS) = (1, 1) state.
const ENDelay = 10 * time.Millisecond

// applyLines follows EN: held low = reset (silent); released for ENDelay =
// boot, into the ROM download mode when IO0 is low at that moment.
func (m *machine) applyLines() {
	enLow := m.rts && !m.dtr
	switch {
	case enLow:
		if m.enRise != nil {
			m.enRise.Stop()
			m.enRise = nil
		}
		if !m.enLow {
			m.enLow = true
			m.b.note("EN low: held in reset")
			m.powerDown(true)
		}
	case m.enLow:
		m.enLow = false
		if m.unplugged {
			return
		}
		m.enRise = time.NewTimer(ENDelay)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// nameHash is FNV-1a of s: boards with the same seed but different names get
// different random streams.
func nameHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
