package protocol

import (
	"bytes"
	"io"
	"testing"
)

func benchFrame() *Frame {
	return NewOK(42, VerbSAS,
		String("sr", "0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"),
		String("sts", "0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\n1578941692"),
		String("sig", "WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM="),
		String("se", "1578941692"),
		String("token", "SharedAccessSignature sr=0neFEEDC0DE%2Fregistrations%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6&sig=WxsrGpYfYNcVs2k6l9OQRN493PGmfVtHXNWG4ANEGnM%3D&se=1578941692&skn=registration"))
}

func BenchmarkEncode(b *testing.B) {
	f := benchFrame()
	enc := NewEncoder(io.Discard, 0)
	b.ReportAllocs()
	b.SetBytes(int64(EncodedFrameLen(f)))
	for b.Loop() {
		if err := enc.Encode(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	wire, err := Encode(benchFrame(), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := Decode(wire); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReader measures splitting a console stream of frames and log lines.
func BenchmarkReader(b *testing.B) {
	wire, err := Encode(benchFrame(), 0)
	if err != nil {
		b.Fatal(err)
	}
	var stream bytes.Buffer
	for i := 0; i < 100; i++ {
		stream.WriteString("I (1234) dps: PUT /0neFEEDC0DE/registrations/x/register -> 202\n")
		stream.Write(wire)
	}
	data := stream.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 0)
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
