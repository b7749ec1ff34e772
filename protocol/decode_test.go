package protocol

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// referenceDecode is the plain reading of PROTOCOL.md's frame grammar
// (split the body at every space, parse each token on its own). Decode must
// accept and reject exactly what it does, with the same error code, seq and
// reason.
func referenceDecode(line []byte) (*Frame, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if !bytes.HasPrefix(line, []byte(Marker+" ")) {
		return nil, frameErr(CodeBadFrame, -1, line, "line does not start with %q", Marker)
	}
	if len(line) < len(Marker)+11 || line[len(line)-10] != ' ' || line[len(line)-9] != '*' {
		return nil, frameErr(CodeBadFrame, -1, line, "no CRC at end of frame")
	}
	body := line[:len(line)-9]
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

// sameDecode checks Decode(line) against referenceDecode(line).
func sameDecode(t require.TestingT, line []byte) {
	got, gerr := Decode(line)
	want, werr := referenceDecode(line)
	if werr != nil {
		require.Error(t, gerr, "%q", line)
		assert.Equal(t, werr, gerr, "%q", line)
		return
	}
	require.NoError(t, gerr, "%q", line)
	assert.Equal(t, want.Kind, got.Kind, "%q", line)
	assert.Equal(t, want.Seq, got.Seq, "%q", line)
	assert.Equal(t, want.Verb, got.Verb, "%q", line)
	require.Len(t, got.Args, len(want.Args), "%q", line)
	for i := range want.Args {
		assert.Equal(t, want.Args[i].Key, got.Args[i].Key, "%q", line)
		assert.Equal(t, string(want.Args[i].Value), string(got.Args[i].Value), "%q", line)
		assert.NotNil(t, got.Args[i].Value, "%q", line)
	}
}

func withCRC(body string) []byte {
	return fmt.Appendf(nil, "%s*%08X\n", body, crc32.ChecksumIEEE([]byte(body)))
}

func TestDecodeMatchesReference(t *testing.T) {
	bodies := []string{
		"@@HIL REQ 7 PING data=hello%20board ",
		"@@HIL OK 2 PING data=%00%01%FF%25%20 ",
		"@@HIL OK 3 SAS policy= sig=abc%3D se=1 ",
		"@@HIL EVT 0 READY proto=1 fw=x reason=poweron ",
		"@@HIL ERR 0 FRAME code=BAD_CRC msg=crc ",
		"@@HIL OK 5 CUSTOM.VERB a=1 ",
		"@@HIL REQ 1 PING ",
		"@@HIL REQ 1 TIME.GET  ",
		"@@HIL REQ 1  PING ",
		"@@HIL REQ  ",
		"@@HIL  ",
		"@@HIL REQ ",
		"@@HIL REQ 1 ",
		"@@HIL REQ 00 PING ",
		"@@HIL REQ 0 PING ",
		"@@HIL REQ +1 PING ",
		"@@HIL REQ 65535 PING ",
		"@@HIL REQ 65536 PING ",
		"@@HIL REQ 99999999999999999999 PING ",
		"@@HIL XX 4 PING ",
		"@@HIL REQ 4 ping ",
		"@@HIL REQ 4 PING a ",
		"@@HIL REQ 4 PING =1 ",
		"@@HIL REQ 4 PING A=1 ",
		"@@HIL REQ 4 PING a=1 a=2 ",
		"@@HIL REQ 4 PING a=1 b==2 c=%zz ",
		"@@HIL REQ 4 PING a=%4 ",
		"@@HIL REQ 4 PING a=%41%4 ",
	}
	for _, b := range bodies {
		sameDecode(t, withCRC(b))
		sameDecode(t, bytes.Replace(withCRC(b), []byte("*"), []byte("*0"), 1)[:len(b)+10])
		wrong := withCRC(b)
		wrong[len(wrong)-2] ^= 1
		sameDecode(t, wrong)
	}
	for _, line := range []string{"", "@@HIL", "@@HIL *00000000", "@@HIL REQ 1 PING *0000000G", "x@@HIL REQ 1 PING *00000000"} {
		sameDecode(t, []byte(line))
	}
}

// Decoded values share one array; appending to one must not change another.
func TestDecodeValuesAreIndependent(t *testing.T) {
	f, err := Decode(withCRC("@@HIL OK 1 PING a=xy b=zw "))
	require.NoError(t, err)
	a, _ := f.Get("a")
	_ = append(a, '!')
	assert.Equal(t, "zw", f.String("b"))
	assert.Equal(t, "xy", f.String("a"))
}

func TestDecodeMatchesReferenceRandom(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tok := rapid.SliceOf(rapid.SampledFrom([]byte("@HIL REQOKERVTPING019=%aAF ._"))).Draw(t, "tail")
		head := rapid.SampledFrom([]string{"@@HIL ", "@@HIL REQ 1 PING ", "@@HIL OK 65535 HELLO a=1 ", "x"}).Draw(t, "head")
		body := head + string(tok) + " "
		sameDecode(t, withCRC(body))
	})
}

func FuzzDecodeMatchesReference(f *testing.F) {
	f.Add([]byte("@@HIL REQ 7 PING data=hello%20board *FC8F5FAF"))
	f.Add([]byte("@@HIL OK 1 PING a=1  *00000000\r\n"))
	f.Fuzz(func(t *testing.T, line []byte) { sameDecode(t, line) })
}
