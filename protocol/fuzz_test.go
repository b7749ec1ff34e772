package protocol

import (
	"bytes"
	"io"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// frame that decodes to the same thing.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"@@HIL REQ 7 PING data=hello%20board *FC8F5FAF",
		"@@HIL OK 2 PING data=%00%01%FF *23AB77E5\r\n",
		"@@HIL EVT 0 READY proto=1 fw=hiltest-agent fw_version=1.0.0 reason=poweron *4C9B4BB0",
		"@@HIL REQ 1 PING *00000000",
		"@@HIL",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := Decode(line)
		if err != nil {
			if _, ok := err.(*FrameError); !ok {
				t.Fatalf("error is %T, want *FrameError", err)
			}
			return
		}
		wire, err := Encode(fr, 1<<20)
		if err != nil {
			t.Fatalf("re-encode of an accepted frame failed: %v", err)
		}
		again, err := Decode(wire)
		if err != nil {
			t.Fatalf("decode of re-encoded frame: %v", err)
		}
		if again.Kind != fr.Kind || again.Seq != fr.Seq || again.Verb != fr.Verb || len(again.Args) != len(fr.Args) {
			t.Fatalf("round trip changed the frame")
		}
		for i := range fr.Args {
			if !bytes.Equal(again.Args[i].Value, fr.Args[i].Value) {
				t.Fatalf("round trip changed arg %s", fr.Args[i].Key)
			}
		}
	})
}

// FuzzReader: the Reader never panics, consumes all input, and accounts for it.
func FuzzReader(f *testing.F) {
	f.Add([]byte("ets Jun  8 2016\n@@HIL OK 7 PING data=hello%20board *2DAF3EE5\njunk@@HIL REQ"), 64)
	f.Add(bytes.Repeat([]byte("@@HIL "), 100), 300)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max < MinMaxFrame {
			max = MinMaxFrame
		}
		if max > 1<<16 {
			max = 1 << 16
		}
		r := NewReader(bytes.NewReader(data), max)
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatal("reader did not finish")
			}
			it, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if it.Frame == nil && it.Err == nil && it.Log == nil {
				t.Fatal("empty item")
			}
			if len(it.Log) > max {
				t.Fatalf("log piece of %d bytes exceeds max %d", len(it.Log), max)
			}
		}
	})
}
