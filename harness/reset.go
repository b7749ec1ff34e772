package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/hiltest/hiltest/internal/rfc2217"
)

// modemLines are the two modem control lines the ESP32 auto-reset circuit
// listens to. serial.Port satisfies it, and so does a simulated board's
// control socket (ctlLines). true = asserted = the pin driven to 0 V.
type modemLines interface {
	SetDTR(bool) error
	SetRTS(bool) error
}

// ResetStep is one step of a DTR/RTS reset sequence: set DTR and/or RTS
// (nil = leave as is), then wait.
type ResetStep struct {
	DTR, RTS *bool
	Wait     time.Duration
}

func (s ResetStep) String() string {
	var parts []string
	bit := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	if s.DTR != nil {
		parts = append(parts, "D"+bit(*s.DTR))
	}
	if s.RTS != nil {
		parts = append(parts, "R"+bit(*s.RTS))
	}
	if s.Wait > 0 {
		parts = append(parts, fmt.Sprintf("W%g", s.Wait.Seconds()))
	}
	return strings.Join(parts, "|")
}

// FormatSequence renders a sequence in esptool's custom reset mini-language
// ("D0|R1|W0.1|D1|R0|W0.05|D0"; esptool reset.py CustomReset).
func FormatSequence(seq []ResetStep) string {
	var parts []string
	for _, s := range seq {
		if t := s.String(); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "|")
}

func on() *bool  { b := true; return &b }
func off() *bool { b := false; return &b }

func dtr(b *bool) ResetStep                           { return ResetStep{DTR: b} }
func rts(b *bool) ResetStep                           { return ResetStep{RTS: b} }
func both(d, r *bool) ResetStep                       { return ResetStep{DTR: d, RTS: r} }
func withWait(s ResetStep, d time.Duration) ResetStep { s.Wait = d; return s }

// DefaultResetDelay is esptool's DEFAULT_RESET_DELAY (0.05 s), the time IO0
// is held low after EN is released in the bootloader sequences
// (espressif/esptool esptool/reset.py @9ea2c5c).
const DefaultResetDelay = 50 * time.Millisecond

// HardResetSequence returns esptool's HardReset: a 100 ms pulse on RTS (EN
// low) with DTR de-asserted (IO0 high), so the chip boots from flash into run
// mode. With usbJTAG (the chip's own USB-Serial-JTAG) EN is held 0.2 s and
// the sequence waits 0.2 s after release, as HardReset(uses_usb=True) does.
// Source: espressif/esptool esptool/reset.py @9ea2c5c, class HardReset
// (../shared/hil/FACTS.md §2). esptool leaves DTR as it is; here it is
// de-asserted first, since Linux asserts both lines when a port is opened.
func HardResetSequence(usbJTAG bool) []ResetStep {
	hold, after := 100*time.Millisecond, time.Duration(0)
	if usbJTAG {
		hold, after = 200*time.Millisecond, 200*time.Millisecond
	}
	return []ResetStep{
		dtr(off()),                  // IO0 high: boot from flash
		withWait(rts(on()), hold),   // EN low: chip in reset
		withWait(rts(off()), after), // EN high: chip runs
	}
}

// ClassicBootloaderSequence returns esptool's ClassicReset, which enters
// the ROM download mode: DTR=0 RTS=1 (EN low), 0.1 s, DTR=1 RTS=0 (IO0 low,
// EN released), delay, DTR=0. Source: espressif/esptool esptool/reset.py
// @9ea2c5c, class ClassicReset.
func ClassicBootloaderSequence(delay time.Duration) []ResetStep {
	return []ResetStep{
		dtr(off()),
		withWait(rts(on()), 100*time.Millisecond),
		dtr(on()),
		withWait(rts(off()), delay),
		dtr(off()),
	}
}

// UnixTightBootloaderSequence returns esptool's UnixTightReset, which sets
// DTR and RTS together in one TIOCMSET per step: (0,0) (1,1) (0,1) 0.1 s
// (1,0) delay (0,0) DTR=0. go.bug.st/serial sets the lines one ioctl pair
// at a time, so here each step sets DTR then RTS. Source:
// espressif/esptool esptool/reset.py @9ea2c5c, class UnixTightReset.
func UnixTightBootloaderSequence(delay time.Duration) []ResetStep {
	return []ResetStep{
		both(off(), off()),
		both(on(), on()),
		withWait(both(off(), on()), 100*time.Millisecond),
		withWait(both(on(), off()), delay),
		both(off(), off()),
		dtr(off()),
	}
}

// USBJTAGBootloaderSequence returns esptool's USBJTAGSerialReset for the
// chip's USB-Serial-JTAG (303a:1001), which decodes the lines itself and
// goes through (1,1) instead of (0,0). Source: espressif/esptool
// esptool/reset.py @9ea2c5c, class USBJTAGSerialReset.
func USBJTAGBootloaderSequence() []ResetStep {
	return []ResetStep{
		rts(off()),
		withWait(dtr(off()), 100*time.Millisecond),
		dtr(on()),
		withWait(rts(off()), 100*time.Millisecond),
		rts(on()),
		dtr(off()),
		withWait(rts(on()), 100*time.Millisecond),
		dtr(off()),
		rts(off()),
	}
}

// errResetUnsupported means the port has no modem lines to drive (a pty,
// some RFC 2217 servers): esptool then warns and goes on without a reset
// (esptool reset.py ResetStrategy.__call__: "ENOTTY for TIOCMSET; EINVAL for
// TIOCMGET"). An RFC 2217 server that does not acknowledge SET-CONTROL
// (ser2net exporting a pty) counts the same.
var errResetUnsupported = errors.New("hardware reset unsupported on this port")

// runSequence drives lines through seq, honouring ctx between steps.
func runSequence(ctx context.Context, lines modemLines, seq []ResetStep) error {
	for _, s := range seq {
		if s.DTR != nil {
			if err := lines.SetDTR(*s.DTR); err != nil {
				return lineErr("DTR", err)
			}
		}
		if s.RTS != nil {
			if err := lines.SetRTS(*s.RTS); err != nil {
				return lineErr("RTS", err)
			}
		}
		if s.Wait > 0 {
			t := time.NewTimer(s.Wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}

func lineErr(line string, err error) error {
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) || errors.Is(err, rfc2217.ErrNoAnswer) {
		return fmt.Errorf("set %s: %w (%w)", line, errResetUnsupported, err)
	}
	return fmt.Errorf("set %s: %w", line, err)
}

// ctlLines drives a simulated board's reset circuit through its control
// socket: a unix socket at "<port symlink>.ctl" that takes the lines
// "rts 1", "rts 0", "dtr 1", "dtr 0" (1 = asserted) and answers each with
// one line, "ok ..." or "error ...".
type ctlLines struct {
	conn net.Conn
	rd   *bufio.Reader
}

// ctlTimeout bounds each exchange on the control socket.
const ctlTimeout = 2 * time.Second

// dialCtl connects to the control socket of the simulated board whose port
// symlink is port.
func dialCtl(ctx context.Context, port string) (*ctlLines, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", port+".ctl")
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("control socket %s.ctl: %w (%w)", port, errResetUnsupported, err)
		}
		return nil, fmt.Errorf("control socket %s.ctl: %w", port, err)
	}
	return &ctlLines{conn: c, rd: bufio.NewReader(c)}, nil
}

// Command sends one control line and returns the answer ("ok ..."); an
// "error ..." answer is an error.
func (c *ctlLines) Command(line string) (string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(ctlTimeout))
	if _, err := fmt.Fprintf(c.conn, "%s\n", line); err != nil {
		return "", fmt.Errorf("control socket: %s: %w", line, err)
	}
	ans, err := c.rd.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("control socket: %s: no answer: %w", line, err)
	}
	ans = strings.TrimSpace(ans)
	if msg, bad := strings.CutPrefix(ans, "error"); bad {
		return ans, fmt.Errorf("control socket: %s: %s", line, strings.TrimSpace(msg))
	}
	return ans, nil
}

func (c *ctlLines) set(line string, v bool) error {
	b := "0"
	if v {
		b = "1"
	}
	_, err := c.Command(line + " " + b)
	return err
}

func (c *ctlLines) SetDTR(v bool) error { return c.set("dtr", v) }
func (c *ctlLines) SetRTS(v bool) error { return c.set("rts", v) }

// Close closes the control connection.
func (c *ctlLines) Close() error { return c.conn.Close() }
