package boards

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMatchUSB(t *testing.T) {
	tests := []struct {
		vid, pid, want string
	}{
		{"10c4", "ea60", "esp32-devkitc"},
		{"10C4", "EA60", "esp32-devkitc"},
		{"0x10c4", "0xea60", "esp32-devkitc"},
		{"1a86", "7523", "ch340"},
		{"1a86", "55d4", "ch9102"},
		{"0403", "6001", "ftdi"},
		{"0403", "6010", "ftdi"},
		{"0403", "6014", "ftdi"},
		{"0403", "6015", "ftdi"},
		{"303a", "1001", "usb-serial-jtag"},
		{"067b", "2303", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		p, ok := MatchUSB(tt.vid, tt.pid)
		assert.Equal(t, tt.want != "", ok, "%s:%s", tt.vid, tt.pid)
		assert.Equal(t, tt.want, p.Name, "%s:%s", tt.vid, tt.pid)
	}
}

func TestProfilesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	usb := map[USBID]string{}
	for _, p := range Profiles() {
		assert.False(t, seen[p.Name], "duplicate profile %s", p.Name)
		seen[p.Name] = true
		assert.True(t, p.Reset.Valid(), p.Name)
		assert.Equal(t, DefaultBaud, p.Baud, p.Name)
		assert.Positive(t, p.BootTime, p.Name)
		assert.Equal(t, p.Reset == ResetUSBJTAG, p.Reenumerates, p.Name)
		for _, u := range p.USB {
			assert.Regexp(t, `^[0-9a-f]{4}$`, u.VID)
			assert.Regexp(t, `^[0-9a-f]{4}$`, u.PID)
			assert.Empty(t, usb[u], "%s in %s and %s", u, usb[u], p.Name)
			usb[u] = p.Name
		}
		q, ok := LookupProfile(p.Name)
		require.True(t, ok)
		assert.Equal(t, p.Name, q.Name)
	}
	_, err := FindProfile("nope")
	assert.EqualError(t, err, `unknown profile "nope" (known: esp32-devkitc, ch340, ch9102, ftdi, usb-serial-jtag, sim)`)
}

func TestUSBMatch(t *testing.T) {
	m := USBMatch{VID: "10C4", PID: "ea60", Serial: "0001"}
	assert.True(t, m.Matches("10c4", "EA60", "0001"))
	assert.False(t, m.Matches("10c4", "ea60", "0002"))
	assert.False(t, m.Matches("1a86", "ea60", "0001"))
	assert.True(t, USBMatch{VID: "303a"}.Matches("303A", "1001", "x"))
	assert.Equal(t, "10c4:ea60 serial 0001", m.String())
}
