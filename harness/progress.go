package harness

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether w is a terminal (a character device that
// answers the TCGETS ioctl).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// Through SyscallConn: f.Fd would put a pollable file in blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		_, ioctlErr = unix.IoctlGetTermios(int(fd), unix.TCGETS)
	}); err != nil {
		return false
	}
	return ioctlErr == nil
}

// Progress reports the run as it goes: on a terminal, one line rewritten
// in place ("12/40 cases · 3 boards running · 1 fail"); elsewhere, one plain
// line per finished case.
type Progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	total int
	done  int
	fail  int
	err   int
	skip  int
	last  string
	width int
}

// NewProgress writes progress to w (nil = none), total cases expected.
// tty selects the in-place line.
func NewProgress(w io.Writer, tty bool, total int) *Progress {
	return &Progress{w: w, tty: tty, total: total}
}

// CaseDone records a finished case.
func (p *Progress) CaseDone(c CaseResult) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	switch c.Status {
	case StatusFail:
		p.fail++
	case StatusError:
		p.err++
	case StatusSkip:
		p.skip++
	}
	p.last = c.Board + " " + c.ID
	if p.tty {
		line := fmt.Sprintf("%d/%d cases  %d fail  %d error  %d skip  last: %s %s", p.done, p.total, p.fail, p.err, p.skip, clip(p.last, 50), c.Status)
		pad := ""
		if n := p.width - len(line); n > 0 {
			pad = fmt.Sprintf("%*s", n, "")
		}
		p.width = len(line)
		fmt.Fprintf(p.w, "\r%s%s", line, pad)
		return
	}
	msg := ""
	if c.Status != StatusPass && c.Message != "" {
		msg = ": " + clip(c.Message, 100)
	}
	fmt.Fprintf(p.w, "[%d/%d] %s %s %s (%s)%s\n", p.done, p.total, c.Board, c.ID, c.Status, fmtDuration(c.DurationMS), msg)
}

// Note prints a line (board set up, flashing, ...) without breaking the
// progress line.
func (p *Progress) Note(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.width, "")
		p.width = 0
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// Finish ends the progress line.
func (p *Progress) Finish() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}
