// Package pollpty opens pseudo-terminal pairs whose master end works with
// Go's poller: read and write deadlines apply to it, and Close interrupts
// a Read or Write blocked on it.
//
// github.com/creack/pty leaves the master in blocking mode (it takes the
// descriptor with (*os.File).Fd to issue its ioctls). On such a file
// SetReadDeadline succeeds but does nothing, and a Read with no input
// waits until a byte arrives or every slave descriptor is closed.
package pollpty

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Open opens a new pty pair. The master is non-blocking and registered
// with Go's poller; the slave is as creack/pty opens it. The caller closes
// both.
func Open() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	// The descriptor is in blocking mode already; Fd changes nothing more.
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	m.Close()
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("open pty: dup master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, nil, fmt.Errorf("open pty: master non-blocking: %w", err)
	}
	// A non-blocking descriptor makes NewFile register it with the poller.
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}
