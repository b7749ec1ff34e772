package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hiltest/hiltest/internal/pollpty"
	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

// action is what the scripted peer does with one request.
type action int

const (
	actAnswer     action = iota // answer normally
	actDrop                     // never answer
	actBadCRC                   // answer with a corrupted CRC
	actStale                    // send an answer with another seq first, then the answer
	actReady                    // reboot instead of answering
	actJunk                     // boot noise and a partial line, then the answer on the same line
	actGarbledReq               // answer ERR 0 FRAME BAD_CRC (the request was garbled)
	actBusy                     // answer ERR BUSY
	actProgress                 // send PROGRESS events, then the answer
	actUnplug                   // vanish (close the pty) instead of answering
)

// peer is a scripted board on a real pty: the session under test opens the
// pty's slave through a symlink with go.bug.st/serial, the peer plays the
// board on the master side. It also serves a control socket next to the
// symlink, like the simulator, so the sim reset method can be tested.
type peer struct {
	t    testing.TB
	dir  string
	link string

	mu       sync.Mutex
	master   *os.File
	slave    *os.File
	faults   map[string][]action
	blobs    map[string][]byte
	requests []*protocol.Frame
	evSeq    uint16
	lines    []string // control socket lines received
	dtr, rts bool
	mac      string // announced MAC
	max      int    // announced max frame
	caps     string // announced caps
	proto    string // announced proto
	silent   bool   // do not answer at all
	// bootOnDTR makes the board print boot output and READY when a DTR
	// line arrives on the control socket: a READY in flight as a reset
	// starts.
	bootOnDTR bool
	bootDelay time.Duration // from EN release to boot output
	// reenumerate makes a reset unplug the port and plug it back, as the
	// chip's own USB-Serial-JTAG does.
	reenumerate bool
	inReset     bool // EN held low or booting: requests are lost
	closed      bool // close was called: no more plugging in

	wg   sync.WaitGroup
	ctl  net.Listener
	gone chan struct{} // closed when the current pty is closed
}

func newPeer(t testing.TB) *peer { return newPeerWith(t, nil) }

// newPeerWith is newPeer with setup applied before the pty exists, so the
// peer behaves as set up from its first byte.
func newPeerWith(t testing.TB, setup func(p *peer)) *peer {
	t.Helper()
	dir := t.TempDir()
	p := &peer{t: t, dir: dir, link: filepath.Join(dir, "board"), faults: map[string][]action{},
		blobs: map[string][]byte{}, max: 4096, proto: "1", mac: "24:0A:C4:00:00:01",
		caps: "ping,reset,time,derive,sas,dps.request,dps.register,tls.ca,net.wifi,dps.config,blob"}
	if setup != nil {
		setup(p)
	}
	if err := p.plug(false); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", p.link+".ctl")
	if err != nil {
		t.Fatal(err)
	}
	p.ctl = ln
	p.wg.Add(1)
	go p.serveCtl()
	return p
}

// plug creates a new pty, points the symlink at it and starts serving; with
// boot it prints boot output and READY.
func (p *peer) plug(boot bool) error {
	// A pollable master, so that Close interrupts a blocked Read.
	master, slave, err := pollpty.Open()
	if err != nil {
		return err
	}
	tmp := p.link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p.link); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		master.Close()
		slave.Close()
		return errors.New("peer closed")
	}
	p.master, p.slave, p.gone = master, slave, make(chan struct{})
	p.mu.Unlock()
	p.wg.Add(1)
	go p.serve(master)
	if boot {
		p.boot("poweron")
	}
	return nil
}

// unplug closes the pty: the session's reads fail as on a USB unplug.
func (p *peer) unplug() {
	p.mu.Lock()
	m, s, g := p.master, p.slave, p.gone
	p.master, p.slave = nil, nil
	p.mu.Unlock()
	// Like the simulator, remove the link: the pty's number may be reused
	// by another process at once.
	os.Remove(p.link)
	if m != nil {
		m.Close()
		s.Close()
		close(g)
	}
}

func (p *peer) close() {
	p.set(func() { p.closed = true })
	p.unplug()
	p.ctl.Close()
	p.wg.Wait()
}

func (p *peer) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

func (p *peer) plugged() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.master != nil
}

func (p *peer) setFaults(verb string, acts ...action) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults[verb] = append(p.faults[verb], acts...)
}

func (p *peer) received() []*protocol.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*protocol.Frame(nil), p.requests...)
}

func (p *peer) count(verb string) int {
	n := 0
	for _, f := range p.received() {
		if f.Verb == verb {
			n++
		}
	}
	return n
}

func (p *peer) write(b []byte) {
	p.mu.Lock()
	m := p.master
	p.mu.Unlock()
	if m != nil {
		m.Write(b)
	}
}

func (p *peer) frame(f *protocol.Frame) { p.write(protocol.AppendFrame(nil, f)) }

func (p *peer) event(name string, args ...protocol.Arg) {
	p.mu.Lock()
	seq := p.evSeq
	p.evSeq++
	p.mu.Unlock()
	p.frame(protocol.NewEvent(seq, name, args...))
}

// boot prints ROM/IDF boot output (with junk and a line without marker),
// then READY.
func (p *peer) boot(reason string) {
	p.mu.Lock()
	p.evSeq = 0
	p.blobs = map[string][]byte{}
	p.mu.Unlock()
	p.write([]byte("ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n\xff\xfe\x00garbage\r\n"))
	p.write([]byte("I (312) cpu_start: Starting scheduler on PRO CPU.\r\n"))
	p.event(protocol.EventReady, protocol.String("proto", "1"), protocol.String("fw", "peer"),
		protocol.String("fw_version", "0.1"), protocol.String("reason", reason))
}

func (p *peer) serve(master *os.File) {
	defer p.wg.Done()
	rd := protocol.NewReader(master, 8192)
	for {
		it, err := rd.Next()
		if err != nil {
			if errors.Is(err, protocol.ErrNoData) {
				continue
			}
			return
		}
		if it.Err != nil {
			if it.Err.Seq > 0 {
				p.frame(protocol.NewError(uint16(it.Err.Seq), "PING", it.Err.Code, it.Err.Reason))
			}
			continue
		}
		if it.Frame == nil || it.Frame.Kind != protocol.KindRequest {
			continue
		}
		p.handle(it.Frame)
	}
}

func (p *peer) handle(req *protocol.Frame) {
	p.mu.Lock()
	p.requests = append(p.requests, req)
	act := actAnswer
	if q := p.faults[req.Verb]; len(q) > 0 {
		act, p.faults[req.Verb] = q[0], q[1:]
	}
	silent := p.silent || p.inReset
	p.mu.Unlock()
	if silent {
		return
	}
	resp := p.answer(req)
	line := protocol.AppendFrame(nil, resp)
	switch act {
	case actDrop:
		return
	case actBadCRC:
		i := bytes.LastIndexByte(line, '*')
		if line[i+1] == '0' {
			line[i+1] = '1'
		} else {
			line[i+1] = '0'
		}
	case actStale:
		stale := resp.Clone()
		stale.Seq = req.Seq + 1000
		p.frame(stale)
		old := resp.Clone()
		old.Seq = req.Seq - 1
		p.frame(old)
	case actReady:
		p.boot("watchdog")
		return
	case actJunk:
		p.write([]byte("\x1b[0;32mI (1234) wifi: connected\x1b[0m\r\npartial line without end "))
	case actGarbledReq:
		p.frame(protocol.NewError(0, protocol.VerbFrame, protocol.CodeBadCRC, "crc mismatch"))
		return
	case actBusy:
		p.frame(protocol.NewError(req.Seq, req.Verb, protocol.CodeBusy, "busy"))
		return
	case actProgress:
		for i := 1; i <= 3; i++ {
			p.event(protocol.EventProgress, protocol.String("verb", req.Verb), protocol.Int("step", int64(i)))
		}
	case actUnplug:
		p.unplug()
		return
	}
	p.write(line)
	if req.Verb == protocol.VerbReset && resp.Kind == protocol.KindOK {
		p.boot("sw")
	}
}

// answer computes the normal answer to req.
func (p *peer) answer(req *protocol.Frame) *protocol.Frame {
	ok := func(args ...protocol.Arg) *protocol.Frame { return protocol.NewOK(req.Seq, req.Verb, args...) }
	val := func(key string) []byte {
		if v, ok := req.Get(key); ok {
			return v
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.blobs[req.String(key+".blob")]
	}
	switch req.Verb {
	case protocol.VerbHello:
		p.mu.Lock()
		defer p.mu.Unlock()
		return ok(protocol.String("proto", p.proto), protocol.String("fw", "peer"), protocol.String("fw_version", "0.1"),
			protocol.String("board", "pty-peer"), protocol.String("chip", "ESP32"), protocol.String("mac", p.mac),
			protocol.Int("max", int64(p.max)), protocol.Int("blob_max", 65536), protocol.String("dialect", "default"),
			protocol.String("caps", p.caps))
	case protocol.VerbPing:
		return ok(protocol.Bytes("data", val("data")))
	case protocol.VerbReset:
		return ok()
	case protocol.VerbBlobPut:
		name := req.String("name")
		off, _ := req.Int("off")
		data, _ := req.Get("data")
		p.mu.Lock()
		defer p.mu.Unlock()
		b := p.blobs[name]
		if off == 0 {
			b = nil
		}
		if int(off) != len(b) {
			return protocol.NewError(req.Seq, req.Verb, protocol.CodeBadArg, "bad offset", protocol.String("arg", "off"))
		}
		b = append(b, data...)
		p.blobs[name] = b
		return ok(protocol.String("name", name), protocol.Int("len", int64(len(b))))
	case protocol.VerbBlobGet:
		name := req.String("name")
		off, _ := req.Int("off")
		p.mu.Lock()
		b := p.blobs[name]
		p.mu.Unlock()
		end := min(len(b), int(off)+1000)
		return ok(protocol.String("name", name), protocol.Bytes("data", b[off:end]), protocol.Int("total", int64(len(b))))
	case "ECHO":
		// Echo data back; a long one comes back through a blob.
		d := val("data")
		if len(d) > 1000 {
			p.mu.Lock()
			p.blobs["out"] = d
			p.mu.Unlock()
			return ok(protocol.String("first", "x"), protocol.String("data.blob", "out"),
				protocol.Int("data.len", int64(len(d))), protocol.String("last", "y"))
		}
		return ok(protocol.String("first", "x"), protocol.Bytes("data", d), protocol.String("last", "y"))
	case protocol.VerbDPSRegister:
		return ok(protocol.String("status", "assigned"))
	}
	return protocol.NewError(req.Seq, req.Verb, protocol.CodeUnknownVerb, "unknown verb")
}

// serveCtl plays the devkit auto-reset circuit on the control socket:
// EN follows RTS (asserted = in reset); releasing EN with IO0 (DTR) not
// asserted boots the board.
func (p *peer) serveCtl() {
	defer p.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := p.ctl.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				line := sc.Text()
				var name string
				var v int
				if _, err := fmt.Sscanf(line, "%s %d", &name, &v); err != nil {
					fmt.Fprintf(c, "error bad line\n")
					continue
				}
				p.mu.Lock()
				bootNow := p.bootOnDTR && name == "dtr"
				p.mu.Unlock()
				if bootNow {
					p.boot("poweron")
				}
				p.mu.Lock()
				p.lines = append(p.lines, line)
				wasReset := p.rts && !p.dtr
				switch strings.ToLower(name) {
				case "rts":
					p.rts = v == 1
				case "dtr":
					p.dtr = v == 1
				}
				inReset := p.rts && !p.dtr
				if inReset {
					p.inReset = true
				}
				release := wasReset && !inReset
				download, delay, reenum := p.dtr, p.bootDelay, p.reenumerate
				p.mu.Unlock()
				fmt.Fprintf(c, "ok\n")
				if release && reenum {
					p.unplug()
					time.Sleep(delay)
					p.set(func() { p.inReset = false })
					_ = p.plug(true) // fails only once the peer is closed
					continue
				}
				if release {
					time.Sleep(delay) // the chip boots
					p.set(func() { p.inReset = false })
					if download {
						p.write([]byte("rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"))
					} else {
						p.boot("hw")
					}
				}
			}
		}()
	}
}

func (p *peer) ctlLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// modemPort is a pty port with modem lines: DTR and RTS go to the peer's
// control socket, as a USB bridge's lines go to the board's reset circuit.
type modemPort struct {
	serial.Port
	ctl *ctlLines
}

func (m modemPort) SetDTR(v bool) error { return gone(m.ctl.SetDTR(v)) }
func (m modemPort) SetRTS(v bool) error { return gone(m.ctl.SetRTS(v)) }

// gone turns a control socket closed under a line change into the EIO a
// vanished USB device gives.
func gone(err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", syscall.EIO, err)
	}
	return err
}
func (m modemPort) Close() error {
	m.ctl.Close()
	return m.Port.Close()
}

// openWithModemLines opens path with OpenPort and wires its modem lines
// to the control socket of the peer at link.
func openWithModemLines(link string) func(string, int) (serial.Port, error) {
	return func(path string, baud int) (serial.Port, error) {
		p, err := OpenPort(path, baud)
		if err != nil {
			return nil, err
		}
		c, err := dialCtl(context.Background(), link)
		if err != nil {
			p.Close()
			return nil, err
		}
		return modemPort{Port: p, ctl: c}, nil
	}
}
