package pollpty

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// hangGuard bounds how long a test waits for a Read that should return; a
// failure means the read blocked, not that it was slow.
const hangGuard = 10 * time.Second

func readAsync(f *os.File) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := f.Read(make([]byte, 16))
		done <- err
	}()
	return done
}

func waitRead(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(hangGuard):
		t.Fatalf("%s: Read still blocked after %v", what, hangGuard)
		return nil
	}
}

func TestMasterDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	master, slave, err := Open()
	require.NoError(t, err)
	defer slave.Close()
	defer master.Close()

	require.NoError(t, master.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	err = waitRead(t, readAsync(master), "empty master with a deadline")
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)

	// Data written to the slave still reads through.
	require.NoError(t, master.SetReadDeadline(time.Now().Add(hangGuard)))
	_, err = slave.Write([]byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	n, err := master.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "x", string(buf[:n]))
}

func TestMasterCloseInterruptsRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	master, slave, err := Open()
	require.NoError(t, err)
	defer slave.Close()

	done := readAsync(master)
	time.Sleep(20 * time.Millisecond) // let the Read block
	require.NoError(t, master.Close())
	err = waitRead(t, done, "closed master")
	assert.True(t, errors.Is(err, os.ErrClosed), "Read after Close: %v", err)
}

func TestSlaveIsTerminal(t *testing.T) {
	master, slave, err := Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	assert.Contains(t, slave.Name(), "/dev/pts/")
	_, err = os.Stat(slave.Name())
	assert.NoError(t, err)
}
