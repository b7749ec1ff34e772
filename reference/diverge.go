package reference

import (
	"bytes"
	"fmt"
	"strings"
)

// divergenceWindow is how many bytes of context the aligned view shows on
// each side of the first divergent byte.
const divergenceWindow = 24

// Divergence is where two byte strings first differ.
type Divergence struct {
	Offset       int    // index of the first differing byte
	Line, Column int    // 1-based line and column of Offset (lines end in '\n')
	Expected     []byte // window of the expected bytes around Offset
	Got          []byte // window of the received bytes around Offset
	ExpectedByte int    // the expected byte at Offset, -1 when expected ended there
	GotByte      int    // the received byte at Offset, -1 when got ended there
	Context      string // the aligned view (same as View)
}

// FirstDivergence compares expected and got byte for byte and returns nil when
// they are equal, otherwise where they first differ, with an aligned view of
// both around that byte.
func FirstDivergence(expected, got []byte) *Divergence {
	n := min(len(expected), len(got))
	off := n
	for i := 0; i < n; i++ {
		if expected[i] != got[i] {
			off = i
			break
		}
	}
	if off == n && len(expected) == len(got) {
		return nil
	}
	d := &Divergence{Offset: off, ExpectedByte: -1, GotByte: -1}
	if off < len(expected) {
		d.ExpectedByte = int(expected[off])
	}
	if off < len(got) {
		d.GotByte = int(got[off])
	}
	d.Line = 1 + bytes.Count(expected[:off], []byte{'\n'})
	d.Column = off - bytes.LastIndexByte(expected[:off], '\n')
	start := max(0, off-divergenceWindow)
	d.Expected = expected[start:min(len(expected), off+divergenceWindow)]
	d.Got = got[start:min(len(got), off+divergenceWindow)]
	d.Context = d.view(start, len(expected), len(got))
	return d
}

// String is a one-line description, e.g.
// "differs at byte 87: expected 'W' (0x57), got 't' (0x74)".
func (d *Divergence) String() string {
	if d == nil {
		return "no difference"
	}
	return fmt.Sprintf("differs at byte %d: expected %s, got %s", d.Offset, describeAt(d.ExpectedByte), describeAt(d.GotByte))
}

// View is a multi-line aligned view: both windows escaped on two lines with a
// caret under the first divergent byte, the position, and the bytes in hex.
func (d *Divergence) View() string {
	if d == nil {
		return "no difference"
	}
	return d.Context
}

func describeAt(b int) string {
	if b < 0 {
		return "end of data"
	}
	return fmt.Sprintf("%s (0x%02x)", quoteByte(byte(b)), b)
}

func quoteByte(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '\\':
		return `'\\'`
	}
	return "'" + escapeByte(c) + "'"
}

// escapeByte writes a byte so that it is visible on one line: printable ASCII
// as is, \r \n \t, others \xNN.
func escapeByte(c byte) string {
	switch c {
	case '\r':
		return `\r`
	case '\n':
		return `\n`
	case '\t':
		return `\t`
	case '\\':
		return `\\`
	}
	if c < 0x20 || c >= 0x7f {
		return fmt.Sprintf(`\x%02x`, c)
	}
	return string(c)
}

func (d *Divergence) view(start, lenExpected, lenGot int) string {
	const ellipsis = "…"
	var b strings.Builder
	line := func(label string, w []byte, total int) {
		b.WriteString(label)
		if start > 0 {
			b.WriteString(ellipsis)
		}
		for _, c := range w {
			b.WriteString(escapeByte(c))
		}
		if start+len(w) < total {
			b.WriteString(ellipsis)
		} else if start+len(w) == d.Offset {
			b.WriteString("⟂") // ends here
		}
		b.WriteByte('\n')
	}
	line("expected: ", d.Expected, lenExpected)
	line("got:      ", d.Got, lenGot)
	// The bytes before Offset are equal in both windows, so the caret column
	// is the same for both lines.
	col := len("expected: ")
	if start > 0 {
		col++ // the ellipsis is one column wide
	}
	for _, c := range d.Expected[:d.Offset-start] {
		col += len(escapeByte(c))
	}
	b.WriteString(strings.Repeat(" ", col) + "^\n")
	fmt.Fprintf(&b, "%s (line %d, column %d)\n", d.String(), d.Line, d.Column)
	hs := max(0, d.Offset-8) - start
	fmt.Fprintf(&b, "hex expected @%d: %s\n", start+hs, hexMarked(d.Expected, hs, d.Offset-start))
	fmt.Fprintf(&b, "hex got      @%d: %s", start+hs, hexMarked(d.Got, hs, d.Offset-start))
	return b.String()
}

// hexMarked writes up to 16 bytes of w from index from, the byte at index at in brackets.
func hexMarked(w []byte, from, at int) string {
	var parts []string
	for i := from; i < len(w) && i < from+16; i++ {
		h := fmt.Sprintf("%02x", w[i])
		if i == at {
			h = "[" + h + "]"
		}
		parts = append(parts, h)
	}
	if at >= len(w) {
		parts = append(parts, "[end]")
	}
	return strings.Join(parts, " ")
}
