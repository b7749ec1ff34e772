package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// port is one pseudo-terminal: the simulator holds the master (the board's
// UART pins) and keeps the slave open too, so that reads on the master do not
// fail with EIO while no host has the port open.
//
// The master is a non-blocking descriptor that is not itself in the Go
// runtime's poller: the poller registers every descriptor for both
// directions, edge-triggered, and a pty master signals "writable" each time
// the host reads from the slave, so a host that reads a byte at a time
// (pyserial's readline) would wake the board once per byte. Instead, two
// epoll instances watch the master and those are in the runtime's poller:
// one for input, always armed, and one for output space, armed only while
// a write waits for the host to read. A goroutine waiting on
// either parks without holding a thread in a system call.
type port struct {
	fd    int      // pty master, O_NONBLOCK
	slave *os.File // kept open; also the handle for termios and flushes
	path  string   // /dev/pts/N

	in, out     *os.File        // epoll instances: master readable, master writable
	inRC, outRC syscall.RawConn // of in and out
	outEp       int             // out's descriptor

	// Every use of fd holds mu for reading, so that close, which takes it
	// for writing after waking the waiters, never closes a descriptor that
	// a read or write still uses (the number could be reused meanwhile).
	mu     sync.RWMutex
	closed bool
	once   sync.Once
}

// errPortClosed is returned by reads and writes on a closed port.
var errPortClosed = errors.New("pty closed")

// openPort creates a pty in raw mode (no echo, no line editing, no CR/LF
// translation: a UART passes bytes as they are).
func openPort() (*port, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	// creack/pty hands back both ends as *os.File in the runtime's poller
	// (in blocking mode, once it took their descriptors for its ioctls).
	// Keep close-on-exec duplicates outside the poller instead: the master
	// gets its own watches (see port), and the slave, only held open and
	// used for ioctls, would otherwise wake the poller whenever the board
	// writes or the host reads.
	path := s.Name()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	m.Close()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dup pty master: %w", err)
	}
	sfd, err := unix.FcntlInt(s.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	s.Close()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("dup pty slave %s: %w", path, err)
	}
	// A blocking descriptor: os.NewFile leaves it out of the poller.
	p := &port{fd: fd, slave: os.NewFile(uintptr(sfd), path), path: path}
	if err := unix.SetNonblock(fd, true); err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("pty master non-blocking: %w", err)
	}
	if p.in, p.inRC, _, err = watch(fd, unix.EPOLLIN); err == nil {
		// Registered with no events: armed only while a write waits.
		p.out, p.outRC, p.outEp, err = watch(fd, 0)
	}
	if err != nil {
		p.closeFDs()
		return nil, fmt.Errorf("pty %s: %w", p.path, err)
	}
	if err := p.makeRaw(); err != nil {
		p.closeFDs()
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

// watch returns an epoll instance, registered with the Go runtime's poller,
// that is readable while fd is ready for events, and its descriptor.
func watch(fd int, events uint32) (*os.File, syscall.RawConn, int, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, -1, fmt.Errorf("epoll: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		unix.Close(ep)
		return nil, nil, -1, fmt.Errorf("epoll: watch pty master: %w", err)
	}
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		return nil, nil, -1, fmt.Errorf("epoll: %w", err)
	}
	f := os.NewFile(uintptr(ep), "epoll")
	// Deadlines work only on a descriptor the runtime polls: this checks
	// that the epoll instance made it into the poller.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, nil, -1, fmt.Errorf("epoll: not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, -1, fmt.Errorf("epoll: %w", err)
	}
	return f, rc, ep, nil
}

// Read reads what the host wrote, waiting until there is some or the port
// closes (then it returns errPortClosed).
func (p *port) Read(b []byte) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, errPortClosed
	}
	var n int
	var rerr error
	// The read is tried inside the wait, after the runtime armed it, so
	// that input arriving between a failed read and the wait is not missed.
	err := p.inRC.Read(func(uintptr) bool {
		for {
			n, rerr = rawRead(p.fd, b)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	switch {
	case err != nil:
		return 0, errPortClosed // the watch was closed: the port is closing
	case rerr != nil:
		return 0, fmt.Errorf("read pty %s: %w", p.path, rerr)
	case n == 0:
		return 0, errPortClosed // end of file
	}
	return n, nil
}

// rawRead and rawWrite are read(2) and write(2) on the non-blocking master
// without the scheduler's system call bookkeeping: they return at once
// (EAGAIN rather than wait), and on the path of every request the
// bookkeeping would wake the runtime's monitor thread each time the board
// goes idle and then has input again.
func rawRead(fd int, b []byte) (int, error)  { return rawIO(unix.SYS_READ, fd, b) }
func rawWrite(fd int, b []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, b) }

func rawIO(call uintptr, fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(call, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// tryWrite writes what the pty takes of b without waiting and returns how
// many bytes it took (0 when its buffer is full or the port is closed).
func (p *port) tryWrite(b []byte) int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0
	}
	for {
		n, err := rawWrite(p.fd, b)
		if err != unix.EINTR {
			return max(n, 0)
		}
	}
}

// errStalled is returned by writeWithin when the pty's buffer stayed full:
// nobody reads the port.
var errStalled = errors.New("pty write stalled")

// writeWithin writes b, waiting while the pty's buffer is full, for at most
// stall in all. It returns how many bytes went out, with errStalled when
// the time ran out and errPortClosed when the port closed.
func (p *port) writeWithin(b []byte, stall time.Duration) (int, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, errPortClosed
	}
	if err := p.out.SetReadDeadline(time.Now().Add(stall)); err != nil {
		return 0, errPortClosed
	}
	done := 0
	armed := false
	var werr error
	err := p.outRC.Read(func(uintptr) bool {
		for done < len(b) {
			n, err := rawWrite(p.fd, b[done:])
			switch err {
			case nil:
				done += n
			case unix.EINTR:
			case unix.EAGAIN:
				// Arm the output watch; the runtime waits on it once this
				// returns (and returns at once if there is room by now).
				if !armed {
					if werr = p.watchOut(unix.EPOLLOUT); werr != nil {
						return true
					}
					armed = true
				}
				return false
			default:
				werr = err
				return true
			}
		}
		return true
	})
	if armed {
		if derr := p.watchOut(0); derr != nil && err == nil && werr == nil {
			werr = derr
		}
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return done, errStalled
	case err != nil:
		return done, errPortClosed
	case werr != nil:
		return done, fmt.Errorf("write pty %s: %w", p.path, werr)
	}
	return done, nil
}

// watchOut sets the events the output watch waits for: unix.EPOLLOUT while
// a write waits for room, 0 otherwise (then nothing on the master wakes it).
func (p *port) watchOut(events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(p.fd)}
	if err := unix.EpollCtl(p.outEp, unix.EPOLL_CTL_MOD, p.fd, &ev); err != nil {
		return fmt.Errorf("epoll: %w", err)
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

// close wakes every read and write waiting on the port, waits for them to
// return and closes the pty.
func (p *port) close() error {
	var err error
	p.once.Do(func() {
		// Closing the watches wakes their waiters, and returns when they
		// have returned.
		errs := []error{p.in.Close(), p.out.Close()}
		p.mu.Lock()
		p.closed = true
		errs = append(errs, p.closeFDs())
		p.mu.Unlock()
		err = errors.Join(errs...)
	})
	return err
}

func (p *port) closeFDs() error {
	var errs []error
	if p.fd >= 0 {
		errs = append(errs, unix.Close(p.fd))
		p.fd = -1
	}
	for _, f := range []*os.File{p.in, p.out} {
		if f != nil {
			_ = f.Close() // already closed by close; open when openPort failed
		}
	}
	errs = append(errs, p.slave.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close pty %s: %w", p.path, err)
	}
	return nil
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
