package protocol

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strings"
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
	return appendDecoded(make([]byte, 0, len(s)), s)
}

// appendDecoded appends the decoding of the wire-encoded value s to dst.
func appendDecoded(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); {
		j := bytes.IndexByte(s[i:], '%')
		if j < 0 {
			return append(dst, s[i:]...), nil
		}
		dst = append(dst, s[i:i+j]...)
		i += j
		if i+2 >= len(s) {
			return nil, fmt.Errorf("truncated %%-escape at offset %d", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("bad %%-escape %q at offset %d", s[i:i+3], i)
		}
		dst = append(dst, hi<<4|lo)
		i += 3
	}
	return dst, nil
}

const maxLineInError = 200

func frameErr(code Code, seq int, line []byte, format string, args ...any) *FrameError {
	if len(line) > maxLineInError {
		line = line[:maxLineInError]
	}
	return &FrameError{Code: code, Seq: seq, Line: bytes.Clone(line), Reason: fmt.Sprintf(format, args...)}
}

// cutSpace splits b at its first space: the token before it, the rest after
// it, and whether there was a space (the tokens of a frame body are those of
// bytes.Split(body, " "), empty ones included).
func cutSpace(b []byte) (tok, rest []byte, found bool) {
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// parseSeq parses a decimal sequence number (digits only, at most 65535),
// or returns -1.
func parseSeq(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return -1
		}
	}
	return n
}

// kindOf returns the Kind constant spelled by b, or "" when b names none.
func kindOf(b []byte) Kind {
	switch string(b) {
	case string(KindRequest):
		return KindRequest
	case string(KindOK):
		return KindOK
	case string(KindError):
		return KindError
	case string(KindEvent):
		return KindEvent
	}
	return ""
}

// verbOf returns the verb spelled by b, sharing the constant's storage for
// the verbs and events this package names.
func verbOf(b []byte) string {
	switch string(b) {
	case VerbHello:
		return VerbHello
	case VerbPing:
		return VerbPing
	case VerbReset:
		return VerbReset
	case VerbTimeSet:
		return VerbTimeSet
	case VerbTimeGet:
		return VerbTimeGet
	case VerbDerive:
		return VerbDerive
	case VerbSAS:
		return VerbSAS
	case VerbDPSConfig:
		return VerbDPSConfig
	case VerbDPSRequest:
		return VerbDPSRequest
	case VerbDPSRegister:
		return VerbDPSRegister
	case VerbTLSCA:
		return VerbTLSCA
	case VerbNetWiFi:
		return VerbNetWiFi
	case VerbBlobPut:
		return VerbBlobPut
	case VerbBlobGet:
		return VerbBlobGet
	case EventReady:
		return EventReady
	case EventLog:
		return EventLog
	case EventProgress:
		return EventProgress
	case VerbFrame:
		return VerbFrame
	}
	return string(b)
}

// Decode parses one frame. line starts with the marker; a trailing LF or CR LF
// is allowed. Errors are *FrameError with CodeBadCRC or CodeBadFrame.
//
// A decoded frame takes four allocations: the Frame, its Args, one string
// holding every key and one byte array holding every value (each value's
// capacity ends at its length, so appending to one never overwrites
// another).
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
	// Tokens: kind, seq, verb, then arguments.
	kindTok, rest, more := cutSpace(body[len(Marker)+1 : len(body)-1])
	var seqTok, verbTok []byte
	ntok := 1
	seq := -1
	if more {
		seqTok, rest, more = cutSpace(rest)
		ntok++
		seq = parseSeq(seqTok)
	}
	if more {
		verbTok, rest, more = cutSpace(rest)
		ntok++
	}
	if got := crc32.ChecksumIEEE(body); got != want {
		return nil, frameErr(CodeBadCRC, seq, line, "CRC mismatch: frame says %08X, computed %08X", want, got)
	}
	if ntok < 3 {
		return nil, frameErr(CodeBadFrame, seq, line, "want kind, seq and verb")
	}
	f := &Frame{Kind: kindOf(kindTok)}
	if f.Kind == "" {
		return nil, frameErr(CodeBadFrame, seq, line, "unknown kind %q", kindTok)
	}
	if seq < 0 || (len(seqTok) > 1 && seqTok[0] == '0') {
		return nil, frameErr(CodeBadFrame, -1, line, "bad sequence number %q", seqTok)
	}
	f.Seq = uint16(seq)
	if !validVerb(verbTok) {
		return nil, frameErr(CodeBadFrame, seq, line, "bad verb %q", verbTok)
	}
	f.Verb = verbOf(verbTok)
	if !more {
		return f, nil
	}
	// Size the arguments, their keys (to be one string) and the room their
	// values need (a value decodes to at most its encoded length), then
	// copy the keys.
	nargs, keyLen, room := 0, 0, 0
	for r, m := rest, true; m; {
		var t []byte
		t, r, m = cutSpace(r)
		nargs++
		if eq := bytes.IndexByte(t, '='); eq >= 0 {
			keyLen += eq
			room += len(t) - eq - 1
		}
	}
	var kb strings.Builder
	kb.Grow(keyLen)
	for r, m := rest, true; m; {
		var t []byte
		t, r, m = cutSpace(r)
		if eq := bytes.IndexByte(t, '='); eq >= 0 {
			kb.Write(t[:eq])
		}
	}
	keys := kb.String()
	f.Args = make([]Arg, 0, nargs)
	values := make([]byte, 0, room)
	off := 0 // of the current key in keys
	for more {
		var t []byte
		t, rest, more = cutSpace(rest)
		eq := bytes.IndexByte(t, '=')
		if eq < 0 {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q has no '='", t)
		}
		key := keys[off : off+eq]
		off += eq
		if !validKey(key) {
			return nil, frameErr(CodeBadFrame, seq, line, "bad argument key %q", t[:eq])
		}
		if f.Has(key) {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q given twice", key)
		}
		start := len(values)
		var err error
		values, err = appendDecoded(values, t[eq+1:])
		if err != nil {
			return nil, frameErr(CodeBadFrame, seq, line, "argument %q: %v", key, err)
		}
		f.Args = append(f.Args, Arg{Key: key, Value: values[start:len(values):len(values)]})
	}
	return f, nil
}
