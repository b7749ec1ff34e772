package protocol_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/hiltest/hiltest/protocol"
)

func ExampleEncode() {
	for _, f := range []*protocol.Frame{
		protocol.NewRequest(7, protocol.VerbPing, protocol.String("data", "hello board")),
		protocol.NewOK(7, protocol.VerbPing, protocol.String("data", "hello board")),
		protocol.NewEvent(0, protocol.EventReady, protocol.String("proto", "1"), protocol.String("fw", "hiltest-agent"),
			protocol.String("fw_version", "1.0.0"), protocol.String("reason", "poweron")),
		protocol.NewRequest(1, protocol.VerbHello, protocol.Int("proto", 1), protocol.Int("max", 4096)),
		protocol.NewRequest(2, protocol.VerbPing, protocol.Bytes("data", []byte{0, 1, 0xff})),
		protocol.NewOK(2, protocol.VerbPing, protocol.Bytes("data", []byte{0, 1, 0xff})),
	} {
		wire, err := protocol.Encode(f, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		os.Stdout.Write(wire)
	}
	// Output:
	// @@HIL REQ 7 PING data=hello%20board *FC8F5FAF
	// @@HIL OK 7 PING data=hello%20board *2DAF3EE5
	// @@HIL EVT 0 READY proto=1 fw=hiltest-agent fw_version=1.0.0 reason=poweron *4C9B4BB0
	// @@HIL REQ 1 HELLO proto=1 max=4096 *346F70DE
	// @@HIL REQ 2 PING data=%00%01%FF *FB704683
	// @@HIL OK 2 PING data=%00%01%FF *23AB77E5
}

func ExampleNewReader() {
	console := "ets Jun  8 2016 00:22:57\n" +
		"I (312) cpu_start: Pro cpu start user code\n" +
		"@@HIL EVT 0 READY proto=1 fw=hiltest-agent fw_version=1.0.0 reason=poweron *4C9B4BB0\n"
	r := protocol.NewReader(strings.NewReader(console), 0)
	for {
		it, err := r.Next()
		if err != nil {
			break
		}
		if it.Frame != nil {
			fmt.Printf("frame: %s %s reason=%s\n", it.Frame.Kind, it.Frame.Verb, it.Frame.String("reason"))
		} else if it.Log != nil {
			fmt.Printf("log:   %s\n", it.Log)
		}
	}
	// Output:
	// log:   ets Jun  8 2016 00:22:57
	// log:   I (312) cpu_start: Pro cpu start user code
	// frame: EVT READY reason=poweron
}

func ExampleAppendEncode() {
	var buf []byte // one buffer for every frame
	for seq := uint16(1); seq <= 2; seq++ {
		var err error
		buf, err = protocol.AppendEncode(buf[:0], protocol.NewRequest(seq, protocol.VerbPing, protocol.String("data", "hi")), 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		os.Stdout.Write(buf)
	}
	_, err := protocol.AppendEncode(buf[:0], protocol.NewRequest(3, protocol.VerbPing, protocol.String("data", strings.Repeat("x", 300))), 256)
	fmt.Println(err)
	// Output:
	// @@HIL REQ 1 PING data=hi *82FD6E9C
	// @@HIL REQ 2 PING data=hi *938004E5
	// TOO_LONG: REQ PING frame is 333 bytes, the maximum is 256
}
