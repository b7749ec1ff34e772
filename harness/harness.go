// Package harness runs hiltest suites: it holds sessions to boards over
// serial ports, runs test cases on each board, compares results byte for
// byte, and writes reports.
package harness

import (
	"context"
	"errors"
	"time"

	"github.com/hiltest/hiltest/protocol"
)

// Board is a board under test as a case sees it: a session over a serial
// port to a real ESP32 or to a simulated board.
type Board interface {
	// Name is the board's name in the bench.
	Name() string
	// Info is what the board said in its last HELLO.
	Info() BoardInfo
	// Call sends a request and returns the board's OK frame. Large argument
	// values are sent through BLOB.PUT and large results fetched through
	// BLOB.GET transparently. An ERR answer is a *protocol.RemoteError;
	// a reboot during the call is ErrBoardReset; no answer is ErrTimeout;
	// a port that is gone for good is ErrBoardLost.
	Call(ctx context.Context, verb string, args ...protocol.Arg) (*protocol.Frame, error)
	// Reset reboots the board with its profile's reset method and waits for
	// it to be ready again (handshake included).
	Reset(ctx context.Context) error
	// TakeOutput returns the device output captured since the last call.
	TakeOutput() []LogLine
}

// BoardInfo is the handshake result.
type BoardInfo struct {
	Proto           int      `json:"proto"`
	Firmware        string   `json:"firmware"`
	FirmwareVersion string   `json:"firmware_version"`
	Board           string   `json:"board"`
	Chip            string   `json:"chip"`
	MAC             string   `json:"mac"`
	MaxFrame        int      `json:"max_frame"`
	BlobMax         int      `json:"blob_max"`
	Dialect         string   `json:"dialect"`
	Caps            []string `json:"caps"`
}

// HasCap reports whether the board listed capability c.
func (i BoardInfo) HasCap(c string) bool {
	for _, x := range i.Caps {
		if x == c {
			return true
		}
	}
	return false
}

// LogLine is one line of device output.
type LogLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// Errors a Board's methods return (wrapped with context).
var (
	ErrTimeout    = errors.New("board did not answer in time")
	ErrBoardReset = errors.New("board reset during the request")
	ErrBoardLost  = errors.New("board lost: its port is gone")
)
