package rfc2217_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hiltest/hiltest/internal/rfc2217"
)

// ExampleDial opens a board exported by ser2net on another bench host
// ("accepter: telnet(rfc2217),tcp,4000"), resets it with the ESP32 devkit
// RTS line, and reads what it prints.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := rfc2217.Dial(ctx, "rfc2217://bench2.lab:4000", rfc2217.Options{BaudRate: 115200})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()

	// RTS drives EN: assert, hold 100 ms, release. A server that cannot set
	// the line (or does not answer) makes SetRTS fail; treat that as "reset
	// not supported", as esptool does.
	if err := port.SetRTS(true); err == nil {
		time.Sleep(100 * time.Millisecond)
		_ = port.SetRTS(false)
	}

	_ = port.SetReadTimeout(500 * time.Millisecond)
	buf := make([]byte, 256)
	n, err := port.Read(buf) // (0, nil) on timeout, like go.bug.st/serial
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", buf[:n])
}
