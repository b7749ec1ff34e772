package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/harness"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.bug.st/serial/enumerator"
)

func fakePorts() ([]*enumerator.PortDetails, error) {
	return []*enumerator.PortDetails{
		// go.bug.st/serial v1.8 reports VID/PID in uppercase.
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10C4", PID: "EA60", SerialNumber: "0001",
			Manufacturer: "Silicon Labs", Product: "CP2102N USB to UART Bridge Controller"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "303A", PID: "1001", SerialNumber: "F4:12:FA:4C:2A:10",
			Product: "USB JTAG/serial debug unit"},
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "1A86", PID: "7523"},
		{Name: "/dev/ttyUSB2", IsUSB: true, VID: "067B", PID: "2303"},
		{Name: "/dev/ttyS0"},
	}, nil
}

func runPorts(t *testing.T, lister harness.PortLister, args ...string) (string, error) {
	t.Helper()
	cmd := portsCommand(lister)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestPortsTable(t *testing.T) {
	out, err := runPorts(t, harness.PortLister{Enumerate: fakePorts})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	find := func(port string) string {
		for _, l := range lines {
			if strings.Contains(l, port+" ") {
				return l
			}
		}
		t.Fatalf("no row for %s in\n%s", port, out)
		return ""
	}
	row := find("/dev/ttyUSB0")
	for _, want := range []string{"10c4:ea60", "0001", "Silicon Labs CP2102N", "esp32-devkitc"} {
		assert.Contains(t, row, want)
	}
	assert.Contains(t, find("/dev/ttyACM0"), "usb-serial-jtag")
	assert.Contains(t, find("/dev/ttyUSB1"), "ch340")
	assert.Contains(t, find("/dev/ttyUSB2"), " - ")
	assert.Contains(t, find("/dev/ttyS0"), " - ")
	// USB ports first, sorted by name.
	assert.Less(t, strings.Index(out, "/dev/ttyUSB2"), strings.Index(out, "/dev/ttyS0"))
	assert.Less(t, strings.Index(out, "/dev/ttyACM0"), strings.Index(out, "/dev/ttyUSB0"))
}

func TestPortsYAMLIsABench(t *testing.T) {
	out, err := runPorts(t, harness.PortLister{Enumerate: fakePorts}, "--yaml")
	require.NoError(t, err)
	b, err := boards.ParseBench([]byte(out), "draft.yaml")
	require.NoError(t, err, "%s", out)
	require.Len(t, b.Boards, 5)
	assert.Equal(t, "usb-serial-jtag-1", b.Boards[0].Name)
	assert.Equal(t, &boards.USBMatch{VID: "303a", PID: "1001", Serial: "F4:12:FA:4C:2A:10"}, b.Boards[0].USB)
	assert.Equal(t, "esp32-devkitc-1", b.Boards[1].Name)
	assert.Equal(t, "ch340-1", b.Boards[2].Name)
	assert.Equal(t, "/dev/ttyUSB1", b.Boards[2].Port, "no serial number: matched by path")
	assert.Equal(t, "ttyUSB2", b.Boards[3].Name)
	assert.Contains(t, out, "# no built-in profile matches")
}

func TestPortsJSON(t *testing.T) {
	out, err := runPorts(t, harness.PortLister{Enumerate: fakePorts}, "--json")
	require.NoError(t, err)
	var ports []harness.PortInfo
	require.NoError(t, json.Unmarshal([]byte(out), &ports))
	require.Len(t, ports, 5)
	assert.Equal(t, "usb-serial-jtag", ports[0].Profile)

	out, err = runPorts(t, harness.PortLister{Enumerate: func() ([]*enumerator.PortDetails, error) { return nil, nil }}, "--json")
	require.NoError(t, err)
	assert.Equal(t, "[]\n", out)
}

func TestPortsIncludeSimLinks(t *testing.T) {
	// Keep the master open: once it is closed (or collected), the
	// /dev/pts entry goes away.
	ptm, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptm.Close()
	defer tty.Close()
	dir := t.TempDir()
	link := filepath.Join(dir, "sim-1")
	require.NoError(t, os.Symlink(tty.Name(), link))
	require.NoError(t, os.WriteFile(link+".ctl", nil, 0o600)) // stands for the control socket
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600))

	var out, errOut bytes.Buffer
	code := run([]string{"ports", "--include", filepath.Join(dir, "*")}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, out.String(), link+" -> "+tty.Name())
	assert.Contains(t, out.String(), "sim")
	assert.NotContains(t, out.String(), "notes.txt")
	assert.NotContains(t, out.String(), ".ctl")

	out.Reset()
	code = run([]string{"ports", "--include", filepath.Join(dir, "*"), "--yaml"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	b, err := boards.ParseBench(out.Bytes(), "draft.yaml")
	require.NoError(t, err, out.String())
	var found *boards.BenchBoard
	for i := range b.Boards {
		if b.Boards[i].Port == link {
			found = &b.Boards[i]
		}
	}
	require.NotNil(t, found, out.String())
	assert.Equal(t, "sim-1", found.Name)
	assert.Equal(t, "sim", found.Profile)
}

// Enumeration failing does not hide the --include paths: they are listed
// with a warning on stderr; without --include it is an error (exit 1).
func TestPortsEnumerationFails(t *testing.T) {
	// Keep the master open: once it is closed (or collected), the
	// /dev/pts entry goes away.
	ptm, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptm.Close()
	defer tty.Close()
	dir := t.TempDir()
	link := filepath.Join(dir, "sim-1")
	require.NoError(t, os.Symlink(tty.Name(), link))
	broken := harness.PortLister{Enumerate: func() ([]*enumerator.PortDetails, error) {
		return nil, errors.New("open /sys/class/tty: no such file or directory")
	}}
	tests := []struct {
		name    string
		args    []string
		wantErr bool
		wantOut string
	}{
		{"table", []string{"--include", filepath.Join(dir, "*")}, false, link + " -> " + tty.Name()},
		{"json", []string{"--include", filepath.Join(dir, "*"), "--json"}, false, `"name": "` + link + `"`},
		{"yaml", []string{"--include", filepath.Join(dir, "*"), "--yaml"}, false, "port: " + link},
		{"no include", nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := portsCommand(broken)
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(tt.args)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "cannot enumerate serial ports")
				assert.Empty(t, out.String())
				return
			}
			require.NoError(t, err)
			assert.Contains(t, out.String(), tt.wantOut)
			assert.Equal(t, "warning: ports: list serial ports: cannot enumerate serial ports: open /sys/class/tty: no such file or directory; listing the --include paths only\n", errOut.String())
		})
	}
}

func TestPortsUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"ports", "--yaml", "--json"}, "exclusive"},
		{[]string{"ports", "--include", "[x"}, "syntax error in pattern"},
		{[]string{"ports", "extra"}, "unknown command"},
		{[]string{"ports", "--bogus"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut.String(), tt.want)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(errOut.String()), "\n")+1, "one line: %q", errOut.String())
		})
	}
}
