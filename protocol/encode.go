package protocol

import (
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
)

const hexUpper = "0123456789ABCDEF"

// AppendValue appends the wire encoding of v to dst: printable ASCII other
// than '%' as itself, every other byte as %XX.
func AppendValue(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		// Copy the run of bytes that stand for themselves in one go.
		j := i
		for j < len(v) && isPlain(v[j]) {
			j++
		}
		dst = append(dst, v[i:j]...)
		if j < len(v) {
			c := v[j]
			dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0xf])
			j++
		}
		i = j
	}
	return dst
}

// isPlain reports whether c is encoded as itself.
func isPlain(c byte) bool { return c >= 0x21 && c <= 0x7e && c != '%' }

// EncodedLen returns the length of the wire encoding of v.
func EncodedLen(v []byte) int {
	n := 0
	for _, c := range v {
		if isPlain(c) {
			n++
		} else {
			n += 3
		}
	}
	return n
}

// validVerb reports whether s is a verb: 1-32 characters A-Z 0-9 . _.
func validVerb[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// validKey reports whether s is an argument key: 1-32 characters a-z 0-9 . _.
func validKey[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks that f can be encoded: a known kind, a valid verb, valid
// and unique keys.
func (f *Frame) Validate() error {
	if !f.Kind.valid() {
		return fmt.Errorf("frame kind %q is not one of REQ, OK, ERR, EVT", f.Kind)
	}
	if !validVerb(f.Verb) {
		return fmt.Errorf("verb %q: want 1-32 characters A-Z 0-9 . _", f.Verb)
	}
	for i, a := range f.Args {
		if !validKey(a.Key) {
			return fmt.Errorf("%s: argument key %q: want 1-32 characters a-z 0-9 . _", f.Verb, a.Key)
		}
		for _, b := range f.Args[:i] {
			if b.Key == a.Key {
				return fmt.Errorf("%s: argument %q given twice", f.Verb, a.Key)
			}
		}
	}
	return nil
}

// AppendFrame appends the complete wire form of f (marker to LF) to dst.
// It does not validate f; use Encode for checked encoding.
func AppendFrame(dst []byte, f *Frame) []byte {
	start := len(dst)
	dst = appendHeader(dst, f)
	for _, a := range f.Args {
		dst = append(dst, ' ')
		dst = append(dst, a.Key...)
		dst = append(dst, '=')
		dst = AppendValue(dst, a.Value)
	}
	dst = append(dst, ' ')
	crc := crc32.ChecksumIEEE(dst[start:])
	dst = append(dst, '*')
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexUpper[(crc>>uint(shift))&0xf])
	}
	return append(dst, '\n')
}

// EncodedFrameLen returns the length of f's wire form, LF included.
func EncodedFrameLen(f *Frame) int {
	n := len(Marker) + 1 + len(f.Kind) + 1 + decimalLen(f.Seq) + 1 + len(f.Verb)
	for _, a := range f.Args {
		n += 1 + len(a.Key) + 1 + EncodedLen(a.Value)
	}
	return n + 1 + 1 + 8 + 1
}

// decimalLen returns the number of decimal digits of n.
func decimalLen(n uint16) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// Encode returns the wire form of f, checking it is valid and at most max
// bytes long (max <= 0 means DefaultMaxFrame).
func Encode(f *Frame, max int) ([]byte, error) {
	return AppendEncode(nil, f, max)
}

// AppendEncode is Encode appending to dst, so that a caller can reuse one
// buffer for many frames. On error it returns dst unchanged.
func AppendEncode(dst []byte, f *Frame, max int) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return dst, err
	}
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if n := EncodedFrameLen(f); n > max {
		return dst, &FrameError{Code: CodeTooLong, Seq: int(f.Seq),
			Reason: fmt.Sprintf("%s %s frame is %d bytes, the maximum is %d", f.Kind, f.Verb, n, max)}
	}
	return AppendFrame(dst, f), nil
}

// Encoder writes frames to an io.Writer, one Write per frame.
type Encoder struct {
	w   io.Writer
	max int
	buf []byte
}

// NewEncoder returns an Encoder that writes frames of at most max bytes to w
// (max <= 0 means DefaultMaxFrame). An Encoder is not safe for concurrent use.
func NewEncoder(w io.Writer, max int) *Encoder {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Encoder{w: w, max: max}
}

// SetMax changes the maximum frame length, e.g. after a handshake.
func (e *Encoder) SetMax(max int) {
	if max > 0 {
		e.max = max
	}
}

// Max returns the maximum frame length.
func (e *Encoder) Max() int { return e.max }

// Encode writes f.
func (e *Encoder) Encode(f *Frame) error {
	b, err := AppendEncode(e.buf[:0], f, e.max)
	if err != nil {
		return err
	}
	e.buf = b
	if _, err := e.w.Write(e.buf); err != nil {
		return fmt.Errorf("write %s %s: %w", f.Kind, f.Verb, err)
	}
	return nil
}

// appendHeader appends "MARKER KIND SEQ VERB" to dst.
func appendHeader(dst []byte, f *Frame) []byte {
	dst = append(dst, Marker...)
	dst = append(dst, ' ')
	dst = append(dst, f.Kind...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(f.Seq), 10)
	dst = append(dst, ' ')
	return append(dst, f.Verb...)
}
