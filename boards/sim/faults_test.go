package sim

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hiltest/hiltest/protocol"
	"go.bug.st/serial"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
		check   func(Faults) bool
	}{
		{"", "", func(f Faults) bool { return f.Noise.Off() && f.UnplugFor == time.Second }},
		{"noise=0.3,corrupt=0.02,drop=0.01,brownout=0.05,hang=0.01,slow=200ms,overlong=0.01,unplug=0.01,skew=-3600", "", func(f Faults) bool {
			return f.Noise.Rate == 0.3 && f.Corrupt.Rate == 0.02 && f.Slow.Rate == 1 && f.SlowDelay == 200*time.Millisecond && f.Skew == -time.Hour
		}},
		{"brownout=@3,hang=@DPS.REGISTER+0.1,hang_for=2s", "", func(f Faults) bool {
			return f.Brownout.AtRequest == 3 && f.Hang.Verb == "DPS.REGISTER" && f.Hang.Rate == 0.1 && f.HangFor == 2*time.Second
		}},
		{"slow=0.5,slow_delay=1s,skew=1h,unplug=@2,unplug_for=300ms", "", func(f Faults) bool {
			return f.Slow.Rate == 0.5 && f.SlowDelay == time.Second && f.Skew == time.Hour && f.UnplugFor == 300*time.Millisecond
		}},
		{"noise=2", "want a rate between 0 and 1", nil},
		{"noise", "want name=value", nil},
		{"fire=0.1", "unknown fault \"fire\"", nil},
		{"noise=0.1,noise=0.2", "given twice", nil},
		{"brownout=@0", "request numbers start at 1", nil},
		{"hang=@dps", "want @N or @VERB", nil},
		{"hang_for=soon", "hang_for", nil},
		{"skew=yesterday", "want seconds", nil},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			f, err := ParseFaults(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Errorf("parsed %+v", f)
			}
			// String round-trips.
			g, err := ParseFaults(f.String())
			if err != nil || g != f {
				t.Errorf("round trip of %q: %+v, %v", f.String(), g, err)
			}
		})
	}
}

func TestFaultNoise(t *testing.T) {
	b, c := boot(t, Config{Seed: 30, Faults: "noise=1"})
	if !strings.ContainsFunc(c.logs[0], func(r rune) bool { return r == utf8.RuneError || r == 0 }) {
		t.Errorf("first output line %q has no ROM noise", c.logs[0])
	}
	junkBefore := c.r.Stats().JunkBytes
	for i := 0; i < 5; i++ {
		c.ok(protocol.VerbPing, protocol.String("data", "x"))
	}
	if c.r.Stats().JunkBytes == junkBefore {
		t.Error("no junk between frames")
	}
	if n := countFaults(b, "noise"); n < 6 {
		t.Errorf("%d noise faults logged, want 6", n)
	}
}

func countFaults(b *Board, name string) int {
	n := 0
	for _, f := range b.FaultLog() {
		if f.Fault == name {
			n++
		}
	}
	return n
}

func TestFaultFrameDamage(t *testing.T) {
	for _, fault := range []string{"corrupt", "drop"} {
		t.Run(fault, func(t *testing.T) {
			b, c := boot(t, Config{Seed: 31, Faults: fault + "=@2"})
			c.ok(protocol.VerbPing)
			seq := c.send(protocol.VerbPing, protocol.String("data", "damaged answer"))
			_, err := c.response(seq, 5*time.Second)
			if !errors.Is(err, protocol.ErrBadCRC) {
				t.Fatalf("answer to request 2: %v, want BAD_CRC", err)
			}
			if !hasFault(b, fault) {
				t.Errorf("fault %s not logged", fault)
			}
			c.ok(protocol.VerbPing) // the resend works
		})
	}
}

func TestFaultBrownout(t *testing.T) {
	b, c := boot(t, Config{Seed: 32, Faults: "brownout=@DERIVE"})
	c.ok(protocol.VerbPing)
	c.logs = nil
	seq := c.send(protocol.VerbDerive, protocol.String("group_key", katGroupKey), protocol.String("reg_id", "x"))
	r, err := c.response(seq, 5*time.Second)
	if !errors.Is(err, errReboot) || r.String("reason") != "brownout" {
		t.Fatalf("DERIVE during brown-out: %v %v", r, err)
	}
	mustContain(t, c.allLogs(), "Brownout detector was triggered")
	mustContain(t, c.allLogs(), "rst:0xf (BROWNOUT_RST)")
	if !hasFault(b, "brownout") {
		t.Error("brownout not logged")
	}
	// Once only: the retry works.
	c.ok(protocol.VerbDerive, protocol.String("group_key", katGroupKey), protocol.String("reg_id", "x"))
}

func TestFaultHang(t *testing.T) {
	t.Run("until reset", func(t *testing.T) {
		b, c := boot(t, Config{Seed: 33, Faults: "hang=@2"})
		c.ok(protocol.VerbPing)
		seq := c.send(protocol.VerbPing)
		if _, err := c.response(seq, 300*time.Millisecond); !errors.Is(err, errDeadline) {
			t.Fatalf("hung board answered: %v", err)
		}
		seq = c.send(protocol.VerbPing)
		if _, err := c.response(seq, 300*time.Millisecond); !errors.Is(err, errDeadline) {
			t.Fatalf("hung board answered: %v", err)
		}
		ctl := dialCtl(t, b)
		ctl.cmd("reset")
		if r := c.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "hw" {
			t.Errorf("READY after hard reset: %s", r.Redacted())
		}
		c.ok(protocol.VerbPing)
		if !hasFault(b, "hang") {
			t.Error("hang not logged")
		}
	})
	t.Run("for a while", func(t *testing.T) {
		b, c := boot(t, Config{Seed: 34, Faults: "hang=@1,hang_for=200ms"})
		seq := c.send(protocol.VerbPing)
		if _, err := c.response(seq, 100*time.Millisecond); !errors.Is(err, errDeadline) {
			t.Fatalf("hung board answered: %v", err)
		}
		for !strings.Contains(lastFault(b), "hang over") {
			time.Sleep(20 * time.Millisecond)
		}
		c.ok(protocol.VerbPing)
	})
}

func lastFault(b *Board) string {
	l := b.FaultLog()
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1].Detail
}

func TestFaultSlowAndOverlong(t *testing.T) {
	b, c := boot(t, Config{Seed: 35, Faults: "slow=@1,slow_delay=500ms,overlong=@2"})
	// A request sent while the slow answer is pending finds the board busy,
	// and its BUSY answer overtakes the slow one.
	slow := c.send(protocol.VerbPing, protocol.String("data", "slow"))
	for !hasFault(b, "slow") {
		time.Sleep(5 * time.Millisecond)
	}
	busy := c.send(protocol.VerbPing, protocol.String("data", "impatient"))
	f, err := c.response(busy, 5*time.Second)
	if err != nil || f.String("code") != string(protocol.CodeBusy) {
		t.Fatalf("second request during a slow answer: %v %v", f, err)
	}
	if len(c.stale) != 0 {
		t.Errorf("the slow answer came before BUSY: %v", c.stale[0].Redacted())
	}
	if f, err := c.response(slow, 5*time.Second); err != nil || f.String("data") != "slow" {
		t.Fatalf("slow answer: %v %v", f, err)
	}
	before := c.r.Stats().JunkBytes
	c.ok(protocol.VerbPing, protocol.String("data", "after a long line"))
	if got := c.r.Stats().JunkBytes - before; got <= 4096 {
		t.Errorf("%d bytes of device output before the answer, want a line over 4096", got)
	}
	if !hasFault(b, "overlong") {
		t.Error("overlong not logged")
	}
}

func TestFaultSkew(t *testing.T) {
	b, c := boot(t, Config{Seed: 36, Faults: "skew=-3600"})
	f := c.ok(protocol.VerbTimeSet, protocol.Int("unix", 1_800_000_000))
	if n, _ := f.Int("unix"); n != 1_800_000_000-3600 {
		t.Errorf("clock after TIME.SET with skew: %d", n)
	}
	if !hasFault(b, "skew") {
		t.Error("skew not logged")
	}
}

func TestFaultUnplug(t *testing.T) {
	b, c := boot(t, Config{Seed: 37, Faults: "unplug=@2,unplug_for=300ms"})
	first := b.Path()
	c.ok(protocol.VerbPing)
	seq := c.send(protocol.VerbPing)
	_, err := c.response(seq, 5*time.Second)
	var pe *serial.PortError
	if !errors.As(err, &pe) || pe.Code() != serial.PortClosed {
		t.Fatalf("read after unplug: %v, want PortClosed", err)
	}
	if _, err := os.Lstat(b.Link()); !os.IsNotExist(err) {
		t.Errorf("symlink still there while unplugged: %v", err)
	}
	// The port comes back behind the same symlink.
	var target string
	for i := 0; i < 200 && target == ""; i++ {
		target, _ = os.Readlink(b.Link())
		time.Sleep(10 * time.Millisecond)
	}
	if target == "" || target != b.Path() {
		t.Fatalf("symlink -> %q, board path %q (was %q)", target, b.Path(), first)
	}
	c2 := openClient(t, b.Link())
	if r := c2.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "poweron" {
		t.Errorf("READY after replug: %s", r.Redacted())
	}
	c2.hello()
	if !hasFault(b, "unplug") || !hasFault(b, "replug") {
		t.Errorf("fault log %v", b.FaultLog())
	}
}

func TestFaultsDeterministic(t *testing.T) {
	run := func() []string {
		b, c := boot(t, Config{Name: "det", Seed: 99, Faults: "noise=0.3,corrupt=0.3,slow=0.2,slow_delay=1ms"})
		for i := 0; i < 20; i++ {
			seq := c.send(protocol.VerbPing, protocol.Int("data", int64(i)))
			_, _ = c.response(seq, 5*time.Second)
		}
		var out []string
		for _, f := range b.FaultLog() {
			out = append(out, f.Fault+": "+f.Detail)
		}
		b.Close()
		return out
	}
	a, bb := run(), run()
	if strings.Join(a, "\n") != strings.Join(bb, "\n") {
		t.Errorf("same seed, different faults:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(bb, "\n"))
	}
	if len(a) < 5 {
		t.Errorf("only %d faults in 20 requests at these rates", len(a))
	}
}

// ctlClient talks to a board's control socket.
type ctlClient struct {
	t  *testing.T
	c  net.Conn
	sc *bufio.Scanner
}

func dialCtl(t *testing.T, b *Board) *ctlClient {
	t.Helper()
	c, err := net.Dial("unix", b.ControlPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &ctlClient{t: t, c: c, sc: bufio.NewScanner(c)}
}

func (cc *ctlClient) cmd(line string) string {
	cc.t.Helper()
	_ = cc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := cc.c.Write([]byte(line + "\n")); err != nil {
		cc.t.Fatal(err)
	}
	if !cc.sc.Scan() {
		cc.t.Fatalf("control %q: no answer: %v", line, cc.sc.Err())
	}
	return cc.sc.Text()
}

func TestControlLines(t *testing.T) {
	b, c := boot(t, Config{Seed: 40})
	ctl := dialCtl(t, b)
	if a := ctl.cmd("state"); !strings.Contains(a, "state=running") {
		t.Errorf("state: %q", a)
	}
	if a := ctl.cmd("dtr 1 rts 1"); !strings.Contains(a, "en=high") || !strings.Contains(a, "state=running") {
		t.Errorf("both asserted must not reset: %q", a)
	}
	// HardReset: RTS asserted holds EN low.
	if a := ctl.cmd("dtr 0"); !strings.Contains(a, "en=low") || !strings.Contains(a, "state=reset") {
		t.Errorf("rts alone: %q", a)
	}
	seq := c.send(protocol.VerbPing)
	if _, err := c.response(seq, 200*time.Millisecond); !errors.Is(err, errDeadline) {
		t.Errorf("board in reset answered: %v", err)
	}
	ctl.cmd("rts 0")
	if r := c.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "hw" {
		t.Errorf("READY: %s", r.Redacted())
	}
	mustContain(t, c.allLogs(), "rst:0x1 (POWERON_RESET),boot:0x13")
	c.ok(protocol.VerbPing)

	// esptool ClassicReset, one line change at a time: DTR=F; RTS=T; DTR=T; RTS=F; DTR=F.
	// The transient (1,1) after "dtr 1" must not boot the chip (EN's RC delay).
	c.logs = nil
	for _, l := range []string{"dtr 0", "rts 1", "dtr 1", "rts 0"} {
		ctl.cmd(l)
	}
	time.Sleep(3 * ENDelay) // IO0 is sampled when EN has risen
	ctl.cmd("dtr 0")
	if _, err := c.tryWaitEvent(protocol.EventReady, 300*time.Millisecond); !errors.Is(err, errDeadline) {
		t.Errorf("download mode sent READY: %v", err)
	}
	mustContain(t, c.allLogs(), "boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))")
	mustContain(t, c.allLogs(), "waiting for download")
	if a := ctl.cmd("state"); !strings.Contains(a, "state=download") {
		t.Errorf("state after download boot: %q", a)
	}
	// UnixTightReset-style hard reset with both lines per step.
	for _, l := range []string{"dtr 0 rts 1", "dtr 0 rts 0"} {
		ctl.cmd(l)
	}
	if r := c.waitEvent(protocol.EventReady, 5*time.Second); r.String("reason") != "hw" {
		t.Errorf("READY: %s", r.Redacted())
	}
	c.hello()
	if a, err := b.Control(t.Context(), "state"); err != nil || !strings.Contains(a, "state=running") {
		t.Errorf("Control(state) = %q, %v", a, err)
	}
	for _, bad := range []string{"rts 2", "dtr", "fly", "unplug x"} {
		if a := ctl.cmd(bad); !strings.HasPrefix(a, "error") {
			t.Errorf("%q answered %q", bad, a)
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	dir := t.TempDir()
	b, err := Start(t.Context(), Config{Name: "gone", LinkDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := openClient(t, b.Link())
	c.waitEvent(protocol.EventReady, 5*time.Second)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Errorf("left behind in %s: %v", dir, ents)
	}
	// The host sees the port gone.
	_, err = c.next(time.Now().Add(2 * time.Second))
	var pe *serial.PortError
	if !errors.As(err, &pe) {
		t.Errorf("read after Close: %v, want a PortError", err)
	}
	// A board with its own temporary directory removes it.
	b2, err := Start(t.Context(), Config{Name: "tmp"})
	if err != nil {
		t.Fatal(err)
	}
	d := b2.dir
	b2.Close()
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("own link dir %s still there: %v", d, err)
	}
}
