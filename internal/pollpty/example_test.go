package pollpty_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hiltest/hiltest/internal/pollpty"
)

// A read from the master gives up at its deadline instead of waiting for
// the other end.
func ExampleOpen() {
	master, slave, err := pollpty.Open()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer master.Close()
	defer slave.Close()

	_ = master.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err = master.Read(make([]byte, 1))
	fmt.Println(errors.Is(err, os.ErrDeadlineExceeded))
	// Output: true
}
