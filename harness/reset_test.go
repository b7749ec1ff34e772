package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// lineRecorder is a set of modem lines that records every change and can
// fail like a pty does.
type lineRecorder struct {
	ops      []string
	dtr, rts bool
	fail     error
	// enLowIO0 records the IO0 level each time EN is released (RTS 1 → 0):
	// true = IO0 low = download mode.
	releases []bool
}

func (r *lineRecorder) SetDTR(v bool) error {
	if r.fail != nil {
		return r.fail
	}
	r.dtr = v
	r.ops = append(r.ops, fmt.Sprintf("dtr %v", v))
	return nil
}

func (r *lineRecorder) SetRTS(v bool) error {
	if r.fail != nil {
		return r.fail
	}
	if r.rts && !v {
		r.releases = append(r.releases, r.dtr)
	}
	r.rts = v
	r.ops = append(r.ops, fmt.Sprintf("rts %v", v))
	return nil
}

func TestResetSequences(t *testing.T) {
	tests := []struct {
		name     string
		seq      []ResetStep
		format   string
		download []bool // IO0 low at each EN release
	}{
		// esptool reset.py HardReset: RTS pulse 0.1 s with DTR de-asserted.
		{"hard", HardResetSequence(false), "D0|R1|W0.1|R0", []bool{false}},
		{"hard usb-jtag", HardResetSequence(true), "D0|R1|W0.2|R0|W0.2", []bool{false}},
		// esptool's own CustomReset string for ClassicReset.
		{"classic", ClassicBootloaderSequence(DefaultResetDelay), "D0|R1|W0.1|D1|R0|W0.05|D0", []bool{true}},
		{"unix tight", UnixTightBootloaderSequence(DefaultResetDelay), "D0|R0|D1|R1|D0|R1|W0.1|D1|R0|W0.05|D0|R0|D0", []bool{true}},
		{"usb-jtag bootloader", USBJTAGBootloaderSequence(), "R0|D0|W0.1|D1|R0|W0.1|R1|D0|R1|W0.1|D0|R0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.format, FormatSequence(tt.seq))
			if tt.download == nil {
				return
			}
			var r lineRecorder
			require.NoError(t, runSequence(context.Background(), &r, tt.seq))
			assert.Equal(t, tt.download, r.releases)
			assert.False(t, r.rts, "EN released at the end")
			assert.False(t, r.dtr, "IO0 released at the end")
		})
	}
}

func TestResetUnsupported(t *testing.T) {
	tests := []struct {
		err         error
		unsupported bool
	}{
		{syscall.ENOTTY, true},
		{syscall.EINVAL, true},
		{fmt.Errorf("wrapped: %w", syscall.ENOTTY), true},
		{fmt.Errorf("rfc2217 127.0.0.1:2000: set DTR=false: %w", rfc2217.ErrNoAnswer), true},
		{syscall.EIO, false},
		{fmt.Errorf("rfc2217 127.0.0.1:2000: write: %w", io.EOF), false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			r := lineRecorder{fail: tt.err}
			err := runSequence(context.Background(), &r, HardResetSequence(false))
			require.Error(t, err)
			assert.Equal(t, tt.unsupported, isUnsupported(err))
		})
	}
}

func isUnsupported(err error) bool {
	return err != nil && errors.Is(err, errResetUnsupported)
}

func TestResetOnRealPty(t *testing.T) {
	master, slave, err := pty.Open()
	require.NoError(t, err)
	defer master.Close()
	defer slave.Close()
	p, err := OpenPort(slave.Name(), 115200)
	require.NoError(t, err)
	defer p.Close()
	// A pty has no modem lines: ENOTTY, reported as unsupported.
	err = runSequence(context.Background(), p, HardResetSequence(false))
	assert.True(t, isUnsupported(err), "%v", err)
}

func TestResetCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r lineRecorder
	err := runSequence(ctx, &r, []ResetStep{withWait(rts(on()), time.Hour)})
	require.ErrorIs(t, err, context.Canceled)
}

func TestControlSocket(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	link := filepath.Join(dir, "sim-1")
	_, err := dialCtl(context.Background(), link)
	assert.True(t, isUnsupported(err), "no socket: %v", err)

	ln, err := net.Listen("unix", link+".ctl")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		lines []string
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if sc.Text() == "rts 7" {
				fmt.Fprintf(c, "error want \"rts 0\" or \"rts 1\"\n")
				continue
			}
			fmt.Fprintf(c, "ok rts=0\n")
		}
	}()
	c, err := dialCtl(context.Background(), link)
	require.NoError(t, err)
	require.NoError(t, runSequence(context.Background(), c, ClassicBootloaderSequence(0)))
	_, err = c.Command("rts 7")
	assert.ErrorContains(t, err, `control socket: rts 7: want "rts 0" or "rts 1"`)
	require.NoError(t, c.Close())
	wg.Wait()
	ln.Close()
	assert.Equal(t, []string{"dtr 0", "rts 1", "dtr 1", "rts 0", "dtr 0", "rts 7"}, lines)
}
