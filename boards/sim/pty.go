package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// port is one pseudo-terminal: the simulator holds the master (the board's
// UART pins) and keeps the slave open too, so that reads on the master do not
// fail with EIO while no host has the port open.
type port struct {
	master *os.File // non-blocking, so reads and writes take deadlines and Close wakes them
	slave  *os.File
	path   string          // /dev/pts/N
	raw    syscall.RawConn // of master
}

// openPort creates a pty in raw mode (no echo, no line editing, no CR/LF
// translation: a UART passes bytes as they are).
func openPort() (*port, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// creack/pty hands back a master in blocking mode (its ioctls call Fd()):
	// duplicate it into a non-blocking descriptor the runtime poller manages.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return nil, fmt.Errorf("pty master non-blocking: %w", err)
	}
	p := &port{master: os.NewFile(uintptr(fd), "/dev/ptmx"), slave: s, path: s.Name()}
	if p.raw, err = p.master.SyscallConn(); err != nil {
		p.close()
		return nil, fmt.Errorf("pty master: %w", err)
	}
	if err := p.makeRaw(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *port) makeRaw() error {
	rc, err := p.slave.SyscallConn()
	if err != nil {
		return fmt.Errorf("pty %s: %w", p.path, err)
	}
	var terr error
	cerr := rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		// cfmakeraw.
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err := errors.Join(cerr, terr); err != nil {
		return fmt.Errorf("pty %s raw mode: %w", p.path, err)
	}
	return nil
}

// flushInput discards what the board wrote and no host has read (the line
// discipline's input queue on the slave side), as a UART's bytes are lost
// when nobody listens.
func (p *port) flushInput() {
	if rc, err := p.slave.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH)
		})
	}
}

// tryWrite writes what the pty takes of b without waiting and returns how
// many bytes it took (0 when its buffer is full or the port is closed).
func (p *port) tryWrite(b []byte) int {
	n := 0
	// No deadline: a deadline the transmitter set for its last write would
	// fail this attempt once past.
	_ = p.master.SetWriteDeadline(time.Time{})
	_ = p.raw.Write(func(fd uintptr) bool {
		k, _ := unix.Write(int(fd), b)
		n = max(k, 0)
		return true // one attempt: never wait for the pty
	})
	return n
}

func (p *port) close() error {
	return errors.Join(p.master.Close(), p.slave.Close())
}

// pointLink makes link a symlink to target, replacing what was there
// atomically (rename over the old link).
func pointLink(link, target string) error {
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".new")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	return nil
}
