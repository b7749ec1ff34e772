// Package boards describes the boards hiltest talks to: built-in board
// profiles (USB bridge, default baud rate, reset method, boot time) and the
// bench inventory file that lists the boards on a bench, the DPS they use and
// the Wi-Fi they join.
package boards

import (
	"fmt"
	"strings"
	"time"
)

// ResetMethod says how the harness reboots a board into run mode.
type ResetMethod string

// Reset methods.
const (
	// ResetClassic drives the DTR/RTS auto-reset circuit of ESP32 devkits
	// (RTS→EN, DTR→IO0) through a USB-UART bridge, as esptool's HardReset
	// does (espressif/esptool esptool/reset.py, ../shared/hil/FACTS.md §2).
	ResetClassic ResetMethod = "classic"
	// ResetUSBJTAG drives the chip's own USB-Serial-JTAG peripheral, which
	// decodes DTR/RTS itself and re-enumerates on reset (esptool
	// USBJTAGSerialReset and HardReset(uses_usb=True)).
	ResetUSBJTAG ResetMethod = "usb-jtag"
	// ResetSim writes the same DTR/RTS sequences as lines to the control
	// socket a simulated board creates next to its port symlink.
	ResetSim ResetMethod = "sim"
	// ResetNone sends the protocol's RESET verb (a soft reboot).
	ResetNone ResetMethod = "none"
)

// ResetMethods returns the known reset methods.
func ResetMethods() []ResetMethod {
	return []ResetMethod{ResetClassic, ResetUSBJTAG, ResetSim, ResetNone}
}

// Valid reports whether m is a known reset method.
func (m ResetMethod) Valid() bool {
	for _, k := range ResetMethods() {
		if m == k {
			return true
		}
	}
	return false
}

// USBID is a USB vendor and product ID pair in lowercase hex without "0x",
// as Linux sysfs shows them ("10c4", "ea60").
type USBID struct{ VID, PID string }

func (u USBID) String() string { return u.VID + ":" + u.PID }

// USBMatch selects a serial port by its USB identity instead of its path.
// Empty fields match anything; VID and PID are compared case-insensitively.
type USBMatch struct {
	VID    string `yaml:"vid" json:"vid"`
	PID    string `yaml:"pid" json:"pid"`
	Serial string `yaml:"serial,omitempty" json:"serial,omitempty"`
}

// Matches reports whether a port with the given USB identity matches m.
func (m USBMatch) Matches(vid, pid, serial string) bool {
	if m.VID != "" && !strings.EqualFold(normHex(m.VID), normHex(vid)) {
		return false
	}
	if m.PID != "" && !strings.EqualFold(normHex(m.PID), normHex(pid)) {
		return false
	}
	return m.Serial == "" || m.Serial == serial
}

func (m USBMatch) String() string {
	s := normHex(m.VID) + ":" + normHex(m.PID)
	if m.Serial != "" {
		s += " serial " + m.Serial
	}
	return s
}

// normHex lowercases a USB ID and strips a "0x" prefix.
func normHex(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "0x")
}

// Profile is what the harness needs to know about a kind of board.
type Profile struct {
	Name        string
	Description string
	USB         []USBID       // USB bridges that identify the profile
	Baud        int           // default console baud rate
	Reset       ResetMethod   // how to reboot the board
	BootTime    time.Duration // from reset release to READY, typically
	// Reenumerates is true when the serial port disappears and comes back
	// on reset (the chip's own USB peripheral resets with it).
	Reenumerates bool
}

// DefaultBaud is the ESP-IDF console default and every built-in profile's.
const DefaultBaud = 115200

// Profiles returns the built-in profiles. USB IDs are from
// platformio/platformio-core 99-platformio-udev.rules, esptool loader.py and
// esptool docs advanced-options.rst (see ../shared/hil/FACTS.md §2, "USB VID:PID").
func Profiles() []Profile {
	return []Profile{
		{
			Name:        "esp32-devkitc",
			Description: "ESP32-DevKitC and other boards with a SiLabs CP210x bridge and the DTR/RTS auto-reset circuit",
			// CP2102/CP2102N/CP2104 are 10c4:ea60; udev rules also list ea61,
			// ea63, ea70, ea71 for the CP210x family.
			USB:      []USBID{{"10c4", "ea60"}, {"10c4", "ea61"}, {"10c4", "ea63"}, {"10c4", "ea70"}, {"10c4", "ea71"}},
			Baud:     DefaultBaud,
			Reset:    ResetClassic,
			BootTime: 1500 * time.Millisecond,
		},
		{
			Name:        "ch340",
			Description: "boards with a WCH CH340/CH341 bridge (ttyUSB, ch341 driver)",
			// 1a86:7522 is seen on DFRobot FireBeetle boards.
			USB:      []USBID{{"1a86", "7523"}, {"1a86", "7522"}},
			Baud:     DefaultBaud,
			Reset:    ResetClassic,
			BootTime: 1500 * time.Millisecond,
		},
		{
			Name:        "ch9102",
			Description: "boards with a WCH CH9102F/CH343 bridge (ttyACM, cdc_acm driver)",
			USB:         []USBID{{"1a86", "55d4"}, {"1a86", "55d3"}},
			Baud:        DefaultBaud,
			Reset:       ResetClassic,
			BootTime:    1500 * time.Millisecond,
		},
		{
			Name:        "ftdi",
			Description: "boards with an FTDI FT232R/FT2232/FT232H/FT231X bridge",
			USB:         []USBID{{"0403", "6001"}, {"0403", "6010"}, {"0403", "6011"}, {"0403", "6014"}, {"0403", "6015"}},
			Baud:        DefaultBaud,
			Reset:       ResetClassic,
			BootTime:    1500 * time.Millisecond,
		},
		{
			Name:        "usb-serial-jtag",
			Description: "ESP32-S3/C3/C6 through the chip's native USB-Serial-JTAG (ttyACM); the port re-enumerates on reset",
			USB:         []USBID{{"303a", "1001"}},
			Baud:        DefaultBaud,
			Reset:       ResetUSBJTAG,
			// esptool's HardReset(uses_usb=True) holds EN 0.2 s and waits
			// 0.2 s after release; re-enumeration adds the rest.
			BootTime:     2 * time.Second,
			Reenumerates: true,
		},
		{
			Name:        "sim",
			Description: "a simulated board on a pty (hiltest sim), reset through its control socket",
			Baud:        DefaultBaud,
			Reset:       ResetSim,
			BootTime:    200 * time.Millisecond,
		},
	}
}

// ProfileNames returns the names of the built-in profiles.
func ProfileNames() []string {
	var names []string
	for _, p := range Profiles() {
		names = append(names, p.Name)
	}
	return names
}

// LookupProfile returns the built-in profile with the given name.
func LookupProfile(name string) (Profile, bool) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// FindProfile returns the built-in profile with the given name or an error
// listing the known names.
func FindProfile(name string) (Profile, error) {
	if p, ok := LookupProfile(name); ok {
		return p, nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
}

// MatchUSB returns the built-in profile whose USB bridge has the given IDs
// (hex, any case, with or without "0x").
func MatchUSB(vid, pid string) (Profile, bool) {
	vid, pid = normHex(vid), normHex(pid)
	for _, p := range Profiles() {
		for _, u := range p.USB {
			if u.VID == vid && u.PID == pid {
				return p, true
			}
		}
	}
	return Profile{}, false
}
