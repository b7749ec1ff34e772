package harness

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/boards"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial/enumerator"
)

func TestPortLister(t *testing.T) {
	// Keep the master open: once it is closed (or collected), the
	// /dev/pts entry goes away.
	ptm, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptm.Close()
	defer tty.Close()
	dir := t.TempDir()
	require.NoError(t, os.Symlink(tty.Name(), filepath.Join(dir, "b")))
	require.NoError(t, os.Symlink(tty.Name(), filepath.Join(dir, "a")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.ctl"), nil, 0o600))
	require.NoError(t, os.Symlink("/nonexistent", filepath.Join(dir, "dangling")))

	l := PortLister{
		Enumerate: func() ([]*enumerator.PortDetails, error) {
			return []*enumerator.PortDetails{
				{Name: "/dev/ttyS0"},
				{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10C4", PID: "EA60", SerialNumber: "0001", Product: "CP2102N"},
				{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10C4", PID: "EA60"}, // listed twice
				nil,
			}, nil
		},
		Include: []string{filepath.Join(dir, "*")},
	}
	ports, err := l.List()
	require.NoError(t, err)
	assert.Equal(t, []PortInfo{
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10c4", PID: "ea60", Serial: "0001", Product: "CP2102N", Profile: "esp32-devkitc"},
		{Name: "/dev/ttyS0"},
		{Name: filepath.Join(dir, "a"), Target: tty.Name(), Profile: "sim"},
		{Name: filepath.Join(dir, "b"), Target: tty.Name()},
	}, ports)

	boom := func() ([]*enumerator.PortDetails, error) { return nil, errors.New("boom") }
	ports, err = PortLister{Enumerate: boom}.List()
	assert.ErrorContains(t, err, "list serial ports: cannot enumerate serial ports: boom")
	assert.ErrorIs(t, err, ErrEnumerate)
	assert.Empty(t, ports)
	// The included paths are listed all the same.
	ports, err = PortLister{Enumerate: boom, Include: []string{filepath.Join(dir, "a")}}.List()
	assert.ErrorIs(t, err, ErrEnumerate)
	assert.Equal(t, []PortInfo{{Name: filepath.Join(dir, "a"), Target: tty.Name(), Profile: "sim"}}, ports)
	_, err = PortLister{Enumerate: func() ([]*enumerator.PortDetails, error) { return nil, nil }, Include: []string{"[x"}}.List()
	assert.Error(t, err)
}

func TestFindUSB(t *testing.T) {
	ports := []PortInfo{
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10c4", PID: "ea60", Serial: "A"},
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "10c4", PID: "ea60", Serial: "B"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "303a", PID: "1001", Serial: "C"},
		{Name: "/dev/ttyS0"},
	}
	tests := []struct {
		m       boards.USBMatch
		want    string
		wantErr string
	}{
		{boards.USBMatch{VID: "10c4", PID: "ea60", Serial: "B"}, "/dev/ttyUSB1", ""},
		{boards.USBMatch{VID: "303A", PID: "1001"}, "/dev/ttyACM0", ""},
		{boards.USBMatch{VID: "10c4", PID: "ea60"}, "", "USB 10c4:ea60 matches 2 ports (/dev/ttyUSB0, /dev/ttyUSB1); add a serial number"},
		{boards.USBMatch{VID: "1a86", PID: "7523"}, "", "no serial port matches USB 1a86:7523"},
	}
	for _, tt := range tests {
		t.Run(tt.m.String(), func(t *testing.T) {
			p, err := FindUSB(ports, tt.m)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.Name)
		})
	}
}
