package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hiltest/hiltest/boards"
	"go.bug.st/serial/enumerator"
)

// PortInfo is one serial port found on the host.
type PortInfo struct {
	Name         string `json:"name" yaml:"name"`                         // device path, or the symlink found through an include glob
	Target       string `json:"target,omitempty" yaml:"target,omitempty"` // what a symlink points to ("/dev/pts/3")
	IsUSB        bool   `json:"usb" yaml:"usb"`
	VID          string `json:"vid,omitempty" yaml:"vid,omitempty"` // lowercase hex
	PID          string `json:"pid,omitempty" yaml:"pid,omitempty"`
	Serial       string `json:"serial,omitempty" yaml:"serial,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty" yaml:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty" yaml:"product,omitempty"`
	Profile      string `json:"profile,omitempty" yaml:"profile,omitempty"` // matching built-in profile, "" when none
}

// PortLister lists serial ports. The zero value lists the host's ports with
// go.bug.st/serial/enumerator.
type PortLister struct {
	// Enumerate returns the ports to list; nil means
	// enumerator.GetDetailedPortsList. Tests inject fixed details here,
	// since ptys never show up in enumeration.
	Enumerate func() ([]*enumerator.PortDetails, error)
	// Include lists glob patterns of extra paths to list when they are (or
	// point to) character devices, e.g. the symlinks of simulated boards
	// ("/tmp/hiltest-sim/*").
	Include []string
}

// ErrEnumerate is wrapped by the error of PortLister.List when the host's
// ports could not be enumerated; the Include paths are listed all the same.
var ErrEnumerate = errors.New("cannot enumerate serial ports")

// ListPorts lists the host's serial ports with their matching profiles.
func ListPorts() ([]PortInfo, error) { return PortLister{}.List() }

// List returns the ports, USB ones first, each sorted by name. When
// enumeration fails it still returns the Include paths it found, with an
// error wrapping ErrEnumerate; a bad Include pattern is an error with no
// ports.
func (l PortLister) List() ([]PortInfo, error) {
	enum := l.Enumerate
	if enum == nil {
		enum = func() ([]*enumerator.PortDetails, error) { return enumerator.GetDetailedPortsList() }
	}
	details, enumErr := enum()
	if enumErr != nil {
		details = nil
		enumErr = fmt.Errorf("list serial ports: %w: %w", ErrEnumerate, enumErr)
	}
	var out []PortInfo
	seen := map[string]bool{}
	for _, d := range details {
		if d == nil || d.Name == "" || seen[d.Name] {
			continue
		}
		seen[d.Name] = true
		pi := PortInfo{Name: d.Name, IsUSB: d.IsUSB, VID: strings.ToLower(d.VID), PID: strings.ToLower(d.PID),
			Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Product: d.Product}
		if p, ok := boards.MatchUSB(pi.VID, pi.PID); ok && pi.IsUSB {
			pi.Profile = p.Name
		}
		out = append(out, pi)
	}
	var extra []PortInfo
	for _, pat := range l.Include {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("include %q: %w", pat, err)
		}
		for _, m := range matches {
			if seen[m] || strings.HasSuffix(m, ".ctl") {
				continue
			}
			fi, err := os.Stat(m) // follows symlinks
			if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
				continue
			}
			seen[m] = true
			pi := PortInfo{Name: m}
			if t, err := filepath.EvalSymlinks(m); err == nil && t != m {
				pi.Target = t
			}
			if _, err := os.Stat(m + ".ctl"); err == nil {
				pi.Profile = "sim"
			}
			extra = append(extra, pi)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].IsUSB != out[j].IsUSB {
			return out[i].IsUSB
		}
		return out[i].Name < out[j].Name
	})
	sort.Slice(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
	return append(out, extra...), enumErr
}

// FindUSB returns the one port that matches m, or an error when none or
// several do.
func FindUSB(ports []PortInfo, m boards.USBMatch) (PortInfo, error) {
	var found []PortInfo
	for _, p := range ports {
		if p.IsUSB && m.Matches(p.VID, p.PID, p.Serial) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return PortInfo{}, fmt.Errorf("no serial port matches USB %s", m)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, p := range found {
		names = append(names, p.Name)
	}
	return PortInfo{}, fmt.Errorf("USB %s matches %d ports (%s); add a serial number", m, len(found), strings.Join(names, ", "))
}
