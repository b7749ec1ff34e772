package reference

import (
	"bytes"
	"strings"
	"testing"
)

func TestFirstDivergence(t *testing.T) {
	tests := []struct {
		name          string
		expected, got string
		offset        int
		eb, gb        int
		str           string
	}{
		{"equal", "abc", "abc", -1, 0, 0, ""},
		{"both empty", "", "", -1, 0, 0, ""},
		{"first byte", "abc", "xbc", 0, 'a', 'x', "differs at byte 0: expected 'a' (0x61), got 'x' (0x78)"},
		{"hex case", "sr=0ne%2Fregistrations", "sr=0ne%2fregistrations", 8, 'F', 'f',
			"differs at byte 8: expected 'F' (0x46), got 'f' (0x66)"},
		{"got shorter", "abc", "ab", 2, 'c', -1, "differs at byte 2: expected 'c' (0x63), got end of data"},
		{"got longer", "ab", "ab\r\n", 2, -1, '\r', `differs at byte 2: expected end of data, got '\r' (0x0d)`},
		{"non-ascii", "a\xff", "a\x00", 1, 0xff, 0, `differs at byte 1: expected '\xff' (0xff), got '\x00' (0x00)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := FirstDivergence([]byte(tt.expected), []byte(tt.got))
			if tt.offset < 0 {
				if d != nil {
					t.Fatalf("got %v, want nil", d)
				}
				return
			}
			if d == nil {
				t.Fatal("nil, want a divergence")
			}
			if d.Offset != tt.offset || d.ExpectedByte != tt.eb || d.GotByte != tt.gb {
				t.Errorf("= %+v", d)
			}
			if d.String() != tt.str {
				t.Errorf("String() = %q, want %q", d.String(), tt.str)
			}
		})
	}
}

// TestDivergenceView checks the caret sits under the divergent byte in the
// escaped view, far from the start of a request with CRLF line ends.
func TestDivergenceView(t *testing.T) {
	exp := []byte("PUT /0ne00000A0A/registrations/dev-1/register?api-version=2021-06-01 HTTP/1.1\r\nHost: h\r\nAuthorization: SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-1&sig=x")
	got := bytes.Replace(exp, []byte("%2Fregistrations%2F"), []byte("%2fregistrations%2f"), 1)
	d := FirstDivergence(exp, got)
	if d == nil {
		t.Fatal("no divergence")
	}
	want := bytes.Index(exp, []byte("%2Fregistrations%2F")) + 2
	if d.Offset != want {
		t.Fatalf("Offset = %d, want %d", d.Offset, want)
	}
	if d.Line != 3 {
		t.Errorf("Line = %d, want 3", d.Line)
	}
	lines := strings.Split(d.View(), "\n")
	if len(lines) < 4 {
		t.Fatalf("view too short:\n%s", d.View())
	}
	caret := strings.Index(lines[2], "^")
	// Column in runes: the ellipsis is one rune but three bytes.
	e, g := []rune(lines[0]), []rune(lines[1])
	if caret < 0 || caret >= len(e) || caret >= len(g) {
		t.Fatalf("caret column %d outside the lines:\n%s", caret, d.View())
	}
	if e[caret] != 'F' || g[caret] != 'f' {
		t.Errorf("caret under %q/%q, want F/f:\n%s", e[caret], g[caret], d.View())
	}
	if !strings.Contains(lines[3], d.String()) {
		t.Errorf("view does not repeat the one-liner:\n%s", d.View())
	}
	if !strings.Contains(d.View(), "[46]") || !strings.Contains(d.View(), "[66]") {
		t.Errorf("hex lines do not mark the bytes:\n%s", d.View())
	}
	if strings.ContainsAny(lines[0], "\r") {
		t.Error("view holds a raw CR")
	}
}

func TestDivergenceViewEscapes(t *testing.T) {
	d := FirstDivergence([]byte("a\r\nb\tX"), []byte("a\r\nb\tY"))
	lines := strings.Split(d.View(), "\n")
	caret := strings.Index(lines[2], "^")
	if lines[0][caret] != 'X' || lines[1][caret] != 'Y' {
		t.Errorf("caret misaligned after escapes:\n%s", d.View())
	}
}
