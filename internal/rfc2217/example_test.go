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

// ExampleParseAddr shows the port names the harness hands to Dial.
func ExampleParseAddr() {
	for _, name := range []string{"/dev/ttyUSB0", "rfc2217://bench2.lab:4000", "rfc2217://10.0.0.7:4001?ign_set_control"} {
		if !rfc2217.IsName(name) {
			fmt.Println(name, "-> local port")
			continue
		}
		addr, ign, err := rfc2217.ParseAddr(name)
		fmt.Println(name, "->", addr, ign, err)
	}
	// Output:
	// /dev/ttyUSB0 -> local port
	// rfc2217://bench2.lab:4000 -> bench2.lab:4000 false <nil>
	// rfc2217://10.0.0.7:4001?ign_set_control -> 10.0.0.7:4001 true <nil>
}
