package harness_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/hiltest/hiltest/protocol"
)

// Open a board on a serial port, reset it with its profile's method, and
// ask it to derive a device key. (Not run: it needs a board.)
func ExampleOpen() {
	profile, _ := boards.LookupProfile("esp32-devkitc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := harness.Open(ctx, harness.SessionConfig{
		Name:    "devkit-1",
		Port:    "/dev/serial/by-id/usb-Silicon_Labs_CP2102N_USB_to_UART_Bridge_Controller_0001-if00-port0",
		Profile: profile,
		Logf:    log.Printf,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.Info().Firmware, s.Info().Caps)

	f, err := s.Call(ctx, protocol.VerbDerive,
		protocol.String("group_key", "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="),
		protocol.String("reg_id", "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"))
	if err != nil {
		// errors.Is(err, harness.ErrBoardReset), ErrTimeout, ErrBoardLost,
		// or a *protocol.RemoteError for an ERR answer.
		log.Fatal(err)
	}
	fmt.Println(f.String("device_key"))
	for _, l := range s.TakeOutput() {
		fmt.Println(l.Time.Format(time.RFC3339Nano), l.Text)
	}
}

// List the serial ports with the board profile each one matches.
func ExampleListPorts() {
	ports, err := harness.ListPorts()
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range ports {
		fmt.Println(p.Name, p.VID, p.PID, p.Serial, p.Profile)
	}
}

// The reset sequences in esptool's custom reset notation.
func ExampleFormatSequence() {
	fmt.Println(harness.FormatSequence(harness.HardResetSequence(false)))
	fmt.Println(harness.FormatSequence(harness.HardResetSequence(true)))
	fmt.Println(harness.FormatSequence(harness.ClassicBootloaderSequence(harness.DefaultResetDelay)))
	// Output:
	// D0|R1|W0.1|R0
	// D0|R1|W0.2|R0|W0.2
	// D0|R1|W0.1|D1|R0|W0.05|D0
}

// Open a board whose port another machine exports with ser2net
// ("accepter: telnet(rfc2217),tcp,4000", "kickolduser: true"). ser2net on a
// pty or a bridge without modem lines does not acknowledge DTR/RTS, so the
// classic reset falls back to the protocol RESET verb with a warning.
// (Not run: it needs the remote board.)
func ExampleOpen_rfc2217() {
	profile, _ := boards.LookupProfile("esp32-devkitc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := harness.Open(ctx, harness.SessionConfig{
		Name:    "remote-1",
		Port:    "rfc2217://bench-pi.lan:4000",
		Profile: profile,
		Logf:    log.Printf,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println(s.Path(), s.Info().MAC)
}

// OpenPortContext opens local and remote ports alike; the context bounds
// only the connection to a remote one. (Not run: it needs the ports.)
func ExampleOpenPortContext() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"/dev/ttyUSB0", "rfc2217://bench-pi.lan:4000?ign_set_control"} {
		p, err := harness.OpenPortContext(ctx, name, 115200)
		if err != nil {
			log.Print(err)
			continue
		}
		err = harness.PingLoop(ctx, p, 10, []byte("hello"))
		fmt.Println(name, err)
		p.Close()
	}
}
