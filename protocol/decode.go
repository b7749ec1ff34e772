package protocol

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strconv"
)

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// DecodeValue decodes a wire-encoded value.
func DecodeValue(s []byte) ([]byte, error) {
	if bytes.IndexByte(s, '%') < 0 {
		return bytes.Clone(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(s) {
			return nil, fmt.Errorf("truncated %%-escape at offset %d", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("bad %%-escape %q at offset %d", s[i:i+3], i)
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return out, nil
}

const maxLineInError = 200

func frameErr(code Code, seq int, line []byte, format string, args ...any) *FrameError {
	if len(line) > maxLineInError {
		line = line[:maxLineInError]
	}
	return &FrameError{Code: code, Seq: seq, Line: bytes.Clone(line), Reason: fmt.Sprintf(format, args...)}
}

// Decode parses one frame. line starts with the marker; a trailing LF or CR LF
// is allowed. Errors are *FrameError with CodeBadCRC or CodeBadFrame.
func Decode(line []byte) (*Frame, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if !bytes.HasPrefix(line, []byte(Marker+" ")) {
		return nil, frameErr(CodeBadFrame, -1, line, "line does not start with %q", Marker)
	}
	// CRC token: " *XXXXXXXX" at the end.
	if len(line) < len(Marker)+11 || line[len(line)-10] != ' ' || line[len(line)-9] != '*' {
		return nil, frameErr(CodeBadFrame, -1, line, "no CRC at end of frame")
	}
	body := line[:len(line)-9] // includes the space before '*'
	var want uint32
	for _, c := range line[len(line)-8:] {
		v, ok := unhex(c)
		if !ok {
			return nil, frameErr(CodeBadFrame, -1, line, "CRC %q is not 8 hex digits", line[len(line)-8:])
		}
		want = want<<4 | uint32(v)
	}
	tokens := bytes.Split(body[len(Marker)+1:len(body)-1], []byte{' '})
	seq := -1
	if len(tokens) >= 2 {
		if n, err := strconv.ParseUint(string(tokens[1]), 10, 16); err == nil {
			seq = int(n)
		}
	}
	if got := crc32.ChecksumIEEE(body); got != want {
		return nil, frameErr(CodeBadCRC, seq, line, "CRC mismatch: frame says %08X, computed %08X", want, got)
	}
	if len(tokens) < 3 {
		return nil, frameErr(CodeBadFrame, seq, line, "want kind, seq and verb")
	}
	f := &Frame{Kind: Kind(tokens[0]), Verb: string(tokens[2])}
	if !f.Kind.valid() {
		return nil, frameErr(CodeBadFrame, seq, line, "unknown kind %q", tokens[0])
	}
	if seq < 0 || (len(tokens[1]) > 1 && tokens[1][0] == '0') {
		return nil, frameErr(CodeBadFrame, -1, line, "bad sequence number %q", tokens[1])
	}
	f.Seq = uint16(seq)
	if !validVerb(f.Verb) {
		return nil, frameErr(CodeBadFrame, seq, line, "bad verb %q", tokens[2])
	}
	if n := len(tokens) - 3; n > 0 {
		f.Args = make([]Arg, 0, n)
	}
	for _, t := range tokens[3:] {
		eq := bytes.IndexByte(t, '=')
		if eq < 0 {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q has no '='", t)
		}
		key := string(t[:eq])
		if !validKey(key) {
			return nil, frameErr(CodeBadFrame, seq, line, "bad argument key %q", t[:eq])
		}
		if f.Has(key) {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q given twice", key)
		}
		v, err := DecodeValue(t[eq+1:])
		if err != nil {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q: %v", key, err)
		}
		f.Args = append(f.Args, Arg{Key: key, Value: v})
	}
	return f, nil
}
