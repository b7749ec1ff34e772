package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestCRCIsZlibCRC32(t *testing.T) {
	// The check value of CRC-32/ISO-HDLC, as PROTOCOL.md states.
	assert.Equal(t, uint32(0xCBF43926), crc32.ChecksumIEEE([]byte("123456789")))
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		frame *Frame
		wire  string // expected wire form without the CRC token
	}{
		{"no args", NewRequest(1, VerbTimeGet), "@@HIL REQ 1 TIME.GET "},
		{"text", NewRequest(7, VerbPing, String("data", "hello board")), "@@HIL REQ 7 PING data=hello%20board "},
		{"empty value", NewRequest(9, VerbSAS, String("policy", "")), "@@HIL REQ 9 SAS policy= "},
		{"binary", NewOK(2, VerbPing, Bytes("data", []byte{0, 1, 0xff, '%', ' '})), "@@HIL OK 2 PING data=%00%01%FF%25%20 "},
		{"base64 keeps = + /", NewOK(3, VerbDerive, String("device_key", "Jsm0/+ab==")), "@@HIL OK 3 DERIVE device_key=Jsm0/+ab== "},
		{"json", NewRequest(4, VerbDPSRequest, String("payload", `{"a":[1,2]}`)), `@@HIL REQ 4 DPS.REQUEST payload={"a":[1,2]} `},
		{"pem newlines", NewRequest(5, VerbTLSCA, String("pem", "-----BEGIN X-----\nAB\n")), "@@HIL REQ 5 TLS.CA pem=-----BEGIN%20X-----%0AAB%0A "},
		{"error", NewError(6, VerbDerive, CodeBadArg, "group_key is not base64", String("arg", "group_key")),
			"@@HIL ERR 6 DERIVE code=BAD_ARG msg=group_key%20is%20not%20base64 arg=group_key "},
		{"event", NewEvent(0, EventReady, String("reason", "poweron")), "@@HIL EVT 0 READY reason=poweron "},
		{"max seq", NewRequest(65535, VerbPing), "@@HIL REQ 65535 PING "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire, err := Encode(tt.frame, 0)
			require.NoError(t, err)
			want := fmt.Sprintf("%s*%08X\n", tt.wire, crc32.ChecksumIEEE([]byte(tt.wire)))
			assert.Equal(t, want, string(wire))
			assert.Equal(t, EncodedFrameLen(tt.frame), len(wire))
			got, err := Decode(wire)
			require.NoError(t, err)
			assertFrameEqual(t, tt.frame, got)
		})
	}
}

func assertFrameEqual(t *testing.T, want, got *Frame) {
	t.Helper()
	assert.Equal(t, want.Kind, got.Kind)
	assert.Equal(t, want.Seq, got.Seq)
	assert.Equal(t, want.Verb, got.Verb)
	require.Len(t, got.Args, len(want.Args))
	for i := range want.Args {
		assert.Equal(t, want.Args[i].Key, got.Args[i].Key)
		assert.Equal(t, string(want.Args[i].Value), string(got.Args[i].Value), "arg %s", want.Args[i].Key)
	}
}

func TestDecodeAcceptsCRLFAndLowercaseHex(t *testing.T) {
	body := "@@HIL OK 2 PING data=%c3%a9 "
	line := fmt.Sprintf("%s*%08x\r\n", body, crc32.ChecksumIEEE([]byte(body)))
	f, err := Decode([]byte(line))
	require.NoError(t, err)
	assert.Equal(t, "é", f.String("data"))
}

func TestDecodeRejects(t *testing.T) {
	withCRC := func(body string) string {
		return fmt.Sprintf("%s*%08X", body, crc32.ChecksumIEEE([]byte(body)))
	}
	tests := []struct {
		name string
		line string
		code Code
		seq  int
	}{
		{"no marker", "hello", CodeBadFrame, -1},
		{"no crc", "@@HIL REQ 1 PING", CodeBadFrame, -1},
		{"crc not hex", "@@HIL REQ 1 PING *XYZ12345", CodeBadFrame, -1},
		{"bad crc keeps seq", "@@HIL REQ 12 PING data=x *00000000", CodeBadCRC, 12},
		{"unknown kind", withCRC("@@HIL FOO 1 PING "), CodeBadFrame, 1},
		{"leading zero seq", withCRC("@@HIL REQ 01 PING "), CodeBadFrame, -1},
		{"seq too big", withCRC("@@HIL REQ 65536 PING "), CodeBadFrame, -1},
		{"lowercase verb", withCRC("@@HIL REQ 1 ping "), CodeBadFrame, 1},
		{"missing verb", withCRC("@@HIL REQ 1 "), CodeBadFrame, 1},
		{"arg without =", withCRC("@@HIL REQ 1 PING data "), CodeBadFrame, 1},
		{"uppercase key", withCRC("@@HIL REQ 1 PING Data=x "), CodeBadFrame, 1},
		{"duplicate key", withCRC("@@HIL REQ 1 PING a=1 a=2 "), CodeBadFrame, 1},
		{"truncated escape", withCRC("@@HIL REQ 1 PING a=%4 "), CodeBadFrame, 1},
		{"bad escape", withCRC("@@HIL REQ 1 PING a=%G0 "), CodeBadFrame, 1},
		{"double space", withCRC("@@HIL REQ 1 PING  a=1 "), CodeBadFrame, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.line))
			var fe *FrameError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.code, fe.Code, fe.Reason)
			assert.Equal(t, tt.seq, fe.Seq)
			if tt.code == CodeBadCRC {
				assert.ErrorIs(t, err, ErrBadCRC)
				assert.True(t, fe.Code.Retriable())
			}
		})
	}
}

func TestEncodeRejectsInvalidFrames(t *testing.T) {
	tests := []struct {
		name  string
		frame *Frame
	}{
		{"bad kind", &Frame{Kind: "XX", Verb: "PING"}},
		{"empty verb", &Frame{Kind: KindRequest}},
		{"verb with space", &Frame{Kind: KindRequest, Verb: "A B"}},
		{"empty key", NewRequest(1, VerbPing, String("", "x"))},
		{"key with =", NewRequest(1, VerbPing, String("a=b", "x"))},
		{"duplicate key", NewRequest(1, VerbPing, String("a", "1"), String("a", "2"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.frame, 0)
			assert.Error(t, err)
		})
	}
}

func TestEncodeEnforcesMaxLength(t *testing.T) {
	f := NewRequest(1, VerbPing, Bytes("data", bytes.Repeat([]byte("a"), 200)))
	n := EncodedFrameLen(f)
	_, err := Encode(f, n)
	require.NoError(t, err)
	_, err = Encode(f, n-1)
	assert.ErrorIs(t, err, ErrTooLong)

	var buf bytes.Buffer
	enc := NewEncoder(&buf, n-1)
	assert.ErrorIs(t, enc.Encode(f), ErrTooLong)
	assert.Zero(t, buf.Len(), "nothing is written for a frame that is too long")
	enc.SetMax(n)
	require.NoError(t, enc.Encode(f))
	assert.Equal(t, n, buf.Len())
}

// TestPropertyRoundTrip: decoding an encoded frame gives the same frame, for
// any byte values.
func TestPropertyRoundTrip(t *testing.T) {
	keyGen := rapid.StringMatching(`[a-z0-9_.]{1,32}`)
	verbGen := rapid.StringMatching(`[A-Z0-9._]{1,32}`)
	kinds := []Kind{KindRequest, KindOK, KindError, KindEvent}
	rapid.Check(t, func(t *rapid.T) {
		f := &Frame{
			Kind: rapid.SampledFrom(kinds).Draw(t, "kind"),
			Seq:  rapid.Uint16().Draw(t, "seq"),
			Verb: verbGen.Draw(t, "verb"),
		}
		keys := rapid.SliceOfDistinct(keyGen, func(s string) string { return s }).Draw(t, "keys")
		for _, k := range keys {
			f.Args = append(f.Args, Arg{Key: k, Value: rapid.SliceOf(rapid.Byte()).Draw(t, "value")})
		}
		wire, err := Encode(f, 1<<20)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if bytes.IndexByte(wire, '\n') != len(wire)-1 {
			t.Fatalf("frame has an LF before its end: %q", wire)
		}
		for _, c := range wire[:len(wire)-1] {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("frame has a non-printable byte 0x%02x", c)
			}
		}
		got, err := Decode(wire)
		if err != nil {
			t.Fatalf("decode %q: %v", wire, err)
		}
		if got.Kind != f.Kind || got.Seq != f.Seq || got.Verb != f.Verb || len(got.Args) != len(f.Args) {
			t.Fatalf("got %+v, want %+v", got, f)
		}
		for i := range f.Args {
			if got.Args[i].Key != f.Args[i].Key || !bytes.Equal(got.Args[i].Value, f.Args[i].Value) {
				t.Fatalf("arg %d: got %q=%q, want %q=%q", i, got.Args[i].Key, got.Args[i].Value, f.Args[i].Key, f.Args[i].Value)
			}
		}
	})
}

// TestPropertyReaderFindsFramesInNoise: frames survive arbitrary device output
// around them, as long as that output does not itself contain the marker.
func TestPropertyReaderFindsFramesInNoise(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "frames")
		var stream bytes.Buffer
		var want []string
		for i := 0; i < n; i++ {
			noise := rapid.SliceOf(rapid.Byte()).Draw(t, "noise")
			noise = bytes.ReplaceAll(noise, []byte(Marker), []byte("@@hil"))
			stream.Write(noise)
			if rapid.Bool().Draw(t, "newline before frame") {
				stream.WriteByte('\n')
			}
			data := rapid.SliceOf(rapid.Byte()).Draw(t, "data")
			f := NewOK(uint16(i+1), VerbPing, Bytes("data", data))
			wire, err := Encode(f, 0)
			if err != nil {
				t.Fatal(err)
			}
			stream.Write(wire)
			want = append(want, string(data))
		}
		r := NewReader(&stream, 0)
		var got []string
		for {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if it.Frame != nil {
				got = append(got, it.Frame.String("data"))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("got %d frames, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("frame %d: got %q want %q", i, got[i], want[i])
			}
		}
	})
}

func mustEncode(t testing.TB, f *Frame) string {
	t.Helper()
	b, err := Encode(f, 0)
	require.NoError(t, err)
	return string(b)
}

func TestReaderSeparatesFramesAndLogs(t *testing.T) {
	ready := mustEncode(t, NewEvent(0, EventReady, String("reason", "poweron")))
	ok := mustEncode(t, NewOK(1, VerbHello, String("proto", "1")))
	bad := strings.Replace(mustEncode(t, NewOK(2, VerbPing, String("data", "abc"))), "abc", "abd", 1)
	console := "ets Jun  8 2016 00:22:57\r\n" +
		"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n" +
		"\x00\xff\xfe garbage at 74880\n" +
		"I (312) cpu_start: Pro cpu start user code\n" +
		ready +
		"junk before a frame " + ok +
		bad +
		"Guru Meditation Error: Core  0 panic'ed (LoadProhibited)\n"
	r := NewReader(strings.NewReader(console), 0)
	frames, errs, logLines := drain(t, r)
	var logs []string
	for _, l := range logLines {
		logs = append(logs, string(l))
	}
	require.Len(t, frames, 2)
	assert.Equal(t, EventReady, frames[0].Verb)
	assert.Equal(t, VerbHello, frames[1].Verb)
	require.Len(t, errs, 1)
	assert.Equal(t, CodeBadCRC, errs[0].Code)
	assert.Equal(t, 2, errs[0].Seq)
	assert.Equal(t, []string{
		"ets Jun  8 2016 00:22:57",
		"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
		"\x00\xff\xfe garbage at 74880",
		"I (312) cpu_start: Pro cpu start user code",
		"junk before a frame ",
		"Guru Meditation Error: Core  0 panic'ed (LoadProhibited)",
	}, logs)
	st := r.Stats()
	assert.Equal(t, 2, st.Frames)
	assert.Equal(t, 1, st.BadCRC)
	assert.Equal(t, 6, st.LogLines)
}

func TestReaderOverlongLines(t *testing.T) {
	longLog := strings.Repeat("x", 10000) + "\n"
	longFrame := mustEncodeMax(t, NewOK(3, VerbPing, Bytes("data", bytes.Repeat([]byte("y"), 5000))))
	after := mustEncode(t, NewOK(4, VerbPing))
	r := NewReader(strings.NewReader(longLog+longFrame+after), 4096)
	frames, tooLong, logs := drain(t, r)
	var logBytes int
	for _, l := range logs {
		assert.LessOrEqual(t, len(l), 4096)
		logBytes += len(l)
	}
	assert.Equal(t, 10000, logBytes, "an over-long log line is kept whole, in pieces")
	require.Len(t, tooLong, 1)
	assert.Equal(t, CodeTooLong, tooLong[0].Code)
	assert.Equal(t, 3, tooLong[0].Seq)
	require.Len(t, frames, 1, "the reader resynchronises after an over-long frame")
	assert.Equal(t, uint16(4), frames[0].Seq)
}

// drain reads r to EOF and sorts its items into frames, rejected frames and
// device output.
func drain(t *testing.T, r *Reader) (frames []*Frame, errs []*FrameError, logs [][]byte) {
	t.Helper()
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			return frames, errs, logs
		}
		require.NoError(t, err)
		switch {
		case it.Frame != nil:
			frames = append(frames, it.Frame)
		case it.Err != nil:
			errs = append(errs, it.Err)
		default:
			logs = append(logs, it.Log)
		}
	}
}

func mustEncodeMax(t *testing.T, f *Frame) string {
	b, err := Encode(f, 1<<20)
	require.NoError(t, err)
	return string(b)
}

// timeoutReader returns its chunks one per Read and then times out, like a
// serial port with a read deadline.
type timeoutReader struct {
	chunks []string
	zero   bool // time out as go.bug.st/serial does, with (0, nil)
}

func (r *timeoutReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		if r.zero {
			return 0, nil
		}
		return 0, os.ErrDeadlineExceeded
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestReaderKeepsPartialLineAcrossTimeouts(t *testing.T) {
	frame := mustEncode(t, NewOK(5, VerbPing, String("data", "split")))
	for _, zero := range []bool{false, true} {
		t.Run(fmt.Sprintf("zero=%v", zero), func(t *testing.T) {
			src := &timeoutReader{chunks: []string{frame[:10]}, zero: zero}
			r := NewReader(src, 0)
			_, err := r.Next()
			if zero {
				assert.ErrorIs(t, err, ErrNoData)
			} else {
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			}
			assert.Equal(t, frame[:10], string(r.Buffered()))
			assert.Nil(t, r.FlushLog(), "a partial frame is not flushed as log")
			src.chunks = append(src.chunks, frame[10:])
			it, err := r.Next()
			require.NoError(t, err)
			require.NotNil(t, it.Frame)
			assert.Equal(t, "split", it.Frame.String("data"))
		})
	}
}

func TestReaderFlushLog(t *testing.T) {
	src := &timeoutReader{chunks: []string{"Rebooting..."}}
	r := NewReader(src, 0)
	_, err := r.Next()
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, "Rebooting...", string(r.FlushLog()))
	assert.Empty(t, r.Buffered())
}

func TestReaderNeverBlocksPastTheUnderlyingDeadline(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	dr := &deadlineReader{r: pr, timeout: 20 * time.Millisecond}
	r := NewReader(dr, 0)
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("Next blocked past the reader's deadline")
	}
	pr.Close()
}

// deadlineReader gives up on a Read after timeout.
type deadlineReader struct {
	r       io.Reader
	timeout time.Duration
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	type res struct {
		n   int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		n, err := d.r.Read(p)
		ch <- res{n, err}
	}()
	select {
	case r := <-ch:
		return r.n, r.err
	case <-time.After(d.timeout):
		return 0, os.ErrDeadlineExceeded
	}
}

func TestFrameAccessors(t *testing.T) {
	f := NewOK(1, VerbTimeGet, String("unix", "1700000000"), String("set", "x"))
	n, err := f.Int("unix")
	require.NoError(t, err)
	assert.Equal(t, int64(1700000000), n)
	_, err = f.Int("set")
	assert.Error(t, err)
	_, err = f.Int("missing")
	assert.Error(t, err)
	f.Set("set", []byte("1"))
	f.Set("new", []byte("v"))
	assert.Equal(t, "1", f.String("set"))
	assert.True(t, f.Has("new"))
	assert.Nil(t, f.Err())

	c := f.Clone()
	c.Args[0].Value[0] = '9'
	assert.Equal(t, "1700000000", f.String("unix"), "Clone copies values")
}

func TestRemoteError(t *testing.T) {
	f := NewError(4, VerbDerive, CodeBadArg, "group_key is not base64", String("arg", "group_key"))
	err := f.Err()
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeBadArg, re.Code)
	assert.Equal(t, "DERIVE: BAD_ARG: group_key is not base64", err.Error())
}

func TestCodesTable(t *testing.T) {
	codes := Codes()
	assert.Len(t, codes, 11)
	seen := map[Code]bool{}
	for _, c := range codes {
		assert.True(t, c.Known())
		assert.NotEqual(t, "unknown error code", c.Message())
		assert.False(t, seen[c])
		seen[c] = true
	}
	assert.False(t, Code("NOPE").Known())
	assert.True(t, CodeBadCRC.Retriable())
	assert.False(t, CodeBadArg.Retriable())
}

func TestRedacted(t *testing.T) {
	f := NewRequest(3, VerbDerive, String("group_key", "c2VjcmV0"), String("reg_id", "dev-1"))
	s := f.Redacted()
	assert.NotContains(t, s, "c2VjcmV0")
	assert.Contains(t, s, "group_key=[redacted]")
	assert.Contains(t, s, "reg_id=dev-1")
}

func TestReaderSplitsLongLogLineReadAtOnce(t *testing.T) {
	line := strings.Repeat("z", 9000) + "\n"
	r := NewReader(&oneShotReader{data: []byte(line)}, 4096)
	total := 0
	for {
		it, err := r.Next()
		if err != nil {
			break
		}
		require.NotNil(t, it.Log)
		assert.LessOrEqual(t, len(it.Log), 4096)
		total += len(it.Log)
	}
	assert.Equal(t, 9000, total)
}

// oneShotReader returns all its data in one Read.
type oneShotReader struct{ data []byte }

func (o *oneShotReader) Read(p []byte) (int, error) {
	if len(o.data) == 0 {
		return 0, io.EOF
	}
	if len(p) < len(o.data) {
		n := copy(p, o.data)
		o.data = o.data[n:]
		return n, nil
	}
	n := copy(p, o.data)
	o.data = nil
	return n, nil
}

func TestEncodedFrameLen(t *testing.T) {
	for _, seq := range []uint16{0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535} {
		f := NewRequest(seq, VerbPing, String("data", "a b"))
		assert.Len(t, AppendFrame(nil, f), EncodedFrameLen(f), "seq %d", seq)
	}
}

func TestReaderBufferGrowsAndShrinks(t *testing.T) {
	short := mustEncode(t, NewOK(1, VerbPing, String("data", "abc")))
	long := mustEncode(t, NewOK(2, VerbPing, String("data", strings.Repeat("x", 3000))))
	tests := []struct {
		name    string
		input   string
		frames  int
		minCap  int // capacity of the buffer after the input is read: at least
		maxCap  int // and at most
		minPeak int // largest capacity seen while reading, at least
	}{
		{name: "short lines stay small", input: strings.Repeat(short, 50), frames: 50,
			minCap: readerInitBuf, maxCap: readerInitBuf, minPeak: readerInitBuf},
		{name: "long line then many short lines", input: long + strings.Repeat(short, readerShrinkAfter+2), frames: readerShrinkAfter + 3,
			minCap: readerInitBuf, maxCap: readerShrinkCap, minPeak: len(long)},
		{name: "long lines in a row keep the buffer", input: strings.Repeat(long, 3) + short, frames: 4,
			minCap: len(long), maxCap: 1 << 20, minPeak: len(long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input), 0)
			frames, peak := 0, 0
			for {
				it, err := r.Next()
				peak = max(peak, cap(r.buf))
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				require.Nil(t, it.Err)
				require.NotNil(t, it.Frame)
				frames++
			}
			assert.Equal(t, tt.frames, frames)
			assert.GreaterOrEqual(t, peak, tt.minPeak)
			assert.LessOrEqual(t, cap(r.buf), tt.maxCap)
			assert.GreaterOrEqual(t, cap(r.buf), tt.minCap)
		})
	}
}

func TestCapabilityFor(t *testing.T) {
	tests := map[string]string{
		VerbHello: "", VerbPing: CapPing, VerbReset: CapReset, VerbTimeSet: CapTime, VerbTimeGet: CapTime,
		VerbDerive: CapDerive, VerbSAS: CapSAS, VerbDPSConfig: CapDPSConfig, VerbDPSRequest: CapDPSRequest,
		VerbDPSRegister: CapDPSRegister, VerbTLSCA: CapTLSCA, VerbNetWiFi: CapNetWiFi,
		VerbBlobPut: CapBlob, VerbBlobGet: CapBlob, "NO.SUCH": "",
	}
	for verb, want := range tests {
		assert.Equal(t, want, CapabilityFor(verb), verb)
	}
}
