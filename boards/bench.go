package boards

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/internal/rfc2217"
	"github.com/hiltest/hiltest/internal/yamlfile"
	"go.yaml.in/yaml/v3"
)

// Bench is a bench inventory: the boards on a bench, the DPS they register
// with and the Wi-Fi they join. Secrets (DPS keys, Wi-Fi credentials) are
// never in the file: it names the environment variables that hold them.
type Bench struct {
	Path   string // the file it was read from (or the name given to ParseBench)
	Boards []BenchBoard
	DPS    BenchDPS
	WiFi   BenchWiFi
}

// BenchBoard is one board of a bench.
type BenchBoard struct {
	Name            string
	Profile         string    // a built-in profile name (see Profiles)
	Port            string    // device path or symlink, or "rfc2217://host:port[?ign_set_control]" (a port exported by ser2net); or USB, or Sim
	USB             *USBMatch // find the port by USB identity
	Baud            int       // 0 = the profile's
	Firmware        string    // expected firmware name (HELLO fw)
	FirmwareVersion string    // expected firmware version (HELLO fw_version)
	Revision        string    // board hardware revision, for reports
	Dialect         string    // SAS dialect the firmware is expected to emit ("" = default)
	Labels          []string
	// Flash is an optional command template run before the suite, with
	// {port}, {firmware} and {board} replaced, e.g.
	// "esptool.py --port {port} write_flash 0x10000 {firmware}".
	Flash string
	// Sim, when set, makes the runner start a simulated board for this
	// entry instead of opening a port.
	Sim  *SimSpec
	Line int // line of the entry in the file
}

// SimSpec configures a simulated board started for a bench entry.
type SimSpec struct {
	Bug    string // seeded firmware bugs, comma-separated names from sim.Bugs (checked by ParseBench)
	Faults string // fault spec, e.g. "noise=0.3,drop=0.01" (checked with sim.ParseFaults)
	Seed   int64
	Agent  string // path of the C agent binary to run instead of the Go simulator
}

// BenchDPS says which DPS the bench uses.
type BenchDPS struct {
	Mode string // "mock" (default) or "live"
	// Mock: the enrollments file ("" = the built-in demo set), the delay
	// before an assignment completes and the Retry-After it announces
	// (seconds; 0 = the mock's default).
	Enrollments string
	AssignDelay time.Duration
	RetryAfter  int
	// Mock: Listen is the address the mock DPS listens on, host:port
	// (ParseBench fills in DefaultDPSListen, 127.0.0.1:0, which only
	// simulated boards on this host reach; real boards on the bench LAN
	// need e.g. 0.0.0.0:8443). Host is the host name or IP address boards
	// are told to connect to (ParseBench fills in ConnectHost()). SANs are
	// extra DNS names and IP addresses for the mock's certificate, besides
	// Host; a board checks the certificate against the name it connects to.
	Listen string
	Host   string
	SANs   []string
	// Live: the ID scope, the endpoint (host or host:port; "" = the global
	// endpoint), the API version ("" = default), and the names of the
	// environment variables holding the enrollment group key and an
	// individual device key.
	IDScope     string
	Endpoint    string
	APIVersion  string
	GroupKeyEnv string
	KeyEnv      string
	Line        int
}

// DefaultDPSListen is where the mock DPS listens when the bench file does
// not say: loopback, a free port.
const DefaultDPSListen = "127.0.0.1:0"

// ListenAddr returns Listen, or DefaultDPSListen when it is empty.
func (d BenchDPS) ListenAddr() string {
	if d.Listen == "" {
		return DefaultDPSListen
	}
	return d.Listen
}

// ConnectHost returns the host boards connect to: Host when set, else the
// host of ListenAddr when it is a specific address, else 127.0.0.1 (the
// mock listens on all interfaces and the bench did not say which name or
// address boards use).
func (d BenchDPS) ConnectHost() string {
	if d.Host != "" {
		return d.Host
	}
	h, _, err := net.SplitHostPort(d.ListenAddr())
	if err != nil || h == "" {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return h
}

// CertNames returns the names the mock's certificate must cover:
// ConnectHost() and the SANs, without repeats.
func (d BenchDPS) CertNames() []string {
	out := []string{d.ConnectHost()}
	for _, n := range d.SANs {
		if !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// BenchWiFi names the environment variables holding the Wi-Fi credentials.
type BenchWiFi struct {
	SSIDEnv     string
	PasswordEnv string
}

// Dialects are the SAS dialects a bench board may declare; they are the
// reference package's (reference.Dialects), repeated here because boards
// does not depend on the reference implementation.
func Dialects() []string { return []string{"default", "azure-sdk-for-c", "azure-iot-sdk-c"} }

// LoadBench reads and validates a bench file. Relative paths in it (the
// mock DPS enrollments file, a simulated board's agent binary) are taken
// relative to the file's directory, and must exist.
func LoadBench(path string) (*Bench, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load bench: %w", err)
	}
	b, err := ParseBench(data, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	errs := yamlfile.Collector{File: path}
	resolve := func(p *string, line int, what string) {
		if *p == "" {
			return
		}
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
		if _, err := os.Stat(*p); err != nil {
			errs.Linef(line, "%s: %v", what, err)
		}
	}
	resolve(&b.DPS.Enrollments, b.DPS.Line, "dps: enrollments")
	for i := range b.Boards {
		if s := b.Boards[i].Sim; s != nil && strings.Contains(s.Agent, "/") {
			resolve(&s.Agent, b.Boards[i].Line, fmt.Sprintf("board %q: sim: agent", b.Boards[i].Name))
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// parser collects the problems of a bench file.
type parser struct{ yamlfile.Collector }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) str(f map[string]*yaml.Node, key, what string) string {
	n := f[key]
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		p.Errorf(n, "%s: %s: want a string", what, key)
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func (p *parser) integer(f map[string]*yaml.Node, key, what string) int64 {
	n := f[key]
	if n == nil {
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.Errorf(n, "%s: %s: want an integer, got %q", what, key, n.Value)
		return 0
	}
	return v
}

func (p *parser) duration(f map[string]*yaml.Node, key, what string) time.Duration {
	n := f[key]
	if n == nil {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || d < 0 {
		p.Errorf(n, "%s: %s: want a duration such as 2s or 500ms, got %q", what, key, n.Value)
		return 0
	}
	return d
}

func (p *parser) strList(f map[string]*yaml.Node, key, what string) []string {
	n := f[key]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.Errorf(n, "%s: %s: want a list of strings", what, key)
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			p.Errorf(c, "%s: %s: want a list of strings", what, key)
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

var (
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	base64RE    = regexp.MustCompile(`^[A-Za-z0-9+/]{40,}={0,2}$`)
	boardNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	usbHexRE    = regexp.MustCompile(`^(0x)?[0-9A-Fa-f]{4}$`)
)

// looksLikeKey reports whether s could be a base64 key (32 bytes or more),
// which must never be written in a bench file.
func looksLikeKey(s string) bool {
	if !base64RE.MatchString(s) {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && len(b) >= 32
}

// checkSecrets reports every scalar in the file that looks like a key.
func (p *parser) checkSecrets(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && looksLikeKey(n.Value) {
		p.Errorf(n, "value %q looks like a key: keep keys out of the bench file; put it in an environment variable and name the variable (group_key_env, device_key_env)", redact(n.Value))
	}
	for _, c := range n.Content {
		p.checkSecrets(c)
	}
}

func redact(s string) string {
	if len(s) <= 8 {
		return "[redacted]"
	}
	return s[:4] + "…[redacted]"
}

func (p *parser) envName(f map[string]*yaml.Node, key, what string) string {
	v := p.str(f, key, what)
	if v != "" && !envNameRE.MatchString(v) && !looksLikeKey(v) {
		p.Errorf(f[key], "%s: %s: %q is not an environment variable name", what, key, v)
	}
	return v
}

// ParseBench parses and validates a bench file; name is used in error
// messages ("bench.yaml:7: board \"b1\": unknown profile \"x\" (known: ...)").
// All problems found are reported, one per line.
func ParseBench(data []byte, name string) (*Bench, error) {
	p := &parser{yamlfile.Collector{File: name}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &yamlfile.Error{File: name, Msg: "empty bench file"}
	}
	root := doc.Content[0]
	p.checkSecrets(root)
	top := p.Fields(root, "bench", "boards", "dps", "wifi")
	b := &Bench{Path: name}

	if n := top["boards"]; n == nil || n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		p.Errorf(orNode(n, root), "bench: want a non-empty list of boards")
	} else {
		names := map[string]int{}
		for i, bn := range n.Content {
			bb := p.board(bn, i)
			if bb.Name != "" {
				if line, dup := names[bb.Name]; dup {
					p.Errorf(bn, "board %q: name already used at line %d", bb.Name, line)
				}
				names[bb.Name] = bn.Line
			}
			b.Boards = append(b.Boards, bb)
		}
	}
	if n := top["dps"]; n != nil {
		b.DPS = p.dps(n)
	} else {
		b.DPS = BenchDPS{Mode: "mock", Listen: DefaultDPSListen}
		b.DPS.Host = b.DPS.ConnectHost()
	}
	if n := top["wifi"]; n != nil {
		f := p.Fields(n, "wifi", "ssid_env", "password_env")
		b.WiFi = BenchWiFi{SSIDEnv: p.envName(f, "ssid_env", "wifi"), PasswordEnv: p.envName(f, "password_env", "wifi")}
	}
	p.SortByLine()
	if err := p.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

func orNode(n, def *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return def
}

func (p *parser) board(n *yaml.Node, i int) BenchBoard {
	what := fmt.Sprintf("board %d", i+1)
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" && n.Content[j+1].Value != "" {
				what = fmt.Sprintf("board %q", n.Content[j+1].Value)
			}
		}
	}
	f := p.Fields(n, what, "name", "profile", "port", "usb", "baud", "firmware", "firmware_version",
		"revision", "dialect", "labels", "flash", "sim")
	bb := BenchBoard{
		Name: p.str(f, "name", what), Profile: p.str(f, "profile", what), Port: p.str(f, "port", what),
		Baud: int(p.integer(f, "baud", what)), Firmware: p.str(f, "firmware", what),
		FirmwareVersion: p.str(f, "firmware_version", what), Revision: p.str(f, "revision", what),
		Dialect: p.str(f, "dialect", what), Labels: p.strList(f, "labels", what), Flash: p.str(f, "flash", what),
		Line: n.Line,
	}
	switch {
	case bb.Name == "":
		p.Errorf(n, "%s: missing name", what)
	case !boardNameRE.MatchString(bb.Name):
		p.Errorf(f["name"], "%s: name: want 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit", what)
	}
	if bb.Profile == "" {
		p.Errorf(n, "%s: missing profile (known: %s)", what, strings.Join(ProfileNames(), ", "))
	} else if _, ok := LookupProfile(bb.Profile); !ok {
		p.Errorf(f["profile"], "%s: unknown profile %q (known: %s)", what, bb.Profile, strings.Join(ProfileNames(), ", "))
	}
	if bb.Baud < 0 || bb.Baud > 10_000_000 {
		p.Errorf(f["baud"], "%s: baud %d out of range", what, bb.Baud)
	}
	if bb.Dialect != "" && !contains(Dialects(), bb.Dialect) {
		p.Errorf(f["dialect"], "%s: unknown dialect %q (known: %s)", what, bb.Dialect, strings.Join(Dialects(), ", "))
	}
	if u := f["usb"]; u != nil {
		uf := p.Fields(u, what+": usb", "vid", "pid", "serial")
		m := USBMatch{VID: p.str(uf, "vid", what), PID: p.str(uf, "pid", what), Serial: p.str(uf, "serial", what)}
		for _, k := range []string{"vid", "pid"} {
			v := map[string]string{"vid": m.VID, "pid": m.PID}[k]
			if !usbHexRE.MatchString(v) {
				p.Errorf(orNode(uf[k], u), "%s: usb: %s: want 4 hex digits such as \"10c4\", got %q", what, k, v)
			}
		}
		m.VID, m.PID = normHex(m.VID), normHex(m.PID)
		bb.USB = &m
	}
	if s := f["sim"]; s != nil {
		sf := p.Fields(s, what+": sim", "bug", "faults", "seed", "agent")
		bb.Sim = &SimSpec{Bug: p.str(sf, "bug", what), Faults: p.str(sf, "faults", what),
			Seed: p.integer(sf, "seed", what), Agent: p.str(sf, "agent", what)}
		p.simSpec(bb.Sim, sf, what)
	}
	set := 0
	for _, k := range []string{"port", "usb", "sim"} {
		if f[k] != nil {
			set++
		}
	}
	switch {
	case set == 0:
		p.Errorf(n, "%s: missing port (give port, usb {vid, pid, serial}, or sim)", what)
	case set > 1:
		p.Errorf(n, "%s: give only one of port, usb and sim", what)
	case f["port"] != nil && bb.Port == "":
		p.Errorf(f["port"], "%s: port is empty", what)
	case rfc2217.IsName(bb.Port):
		if _, _, err := rfc2217.ParseAddr(bb.Port); err != nil {
			p.Errorf(f["port"], "%s: port: want rfc2217://host:port[?ign_set_control]: %v", what, err)
		}
	case strings.Contains(bb.Port, "://"):
		p.Errorf(f["port"], "%s: port %q: unknown scheme (a device path, or rfc2217://host:port)", what, bb.Port)
	}
	if bb.Flash != "" && !strings.Contains(bb.Flash, "{port}") {
		p.Errorf(f["flash"], "%s: flash command must use {port}", what)
	}
	if bb.Flash != "" {
		rest := bb.Flash
		for _, ph := range []string{"{port}", "{firmware}", "{board}"} {
			rest = strings.ReplaceAll(rest, ph, "")
		}
		if i := strings.IndexByte(rest, '{'); i >= 0 && strings.IndexByte(rest[i:], '}') > 0 {
			p.Errorf(f["flash"], "%s: flash command: unknown placeholder in %q (known: {port}, {firmware}, {board})", what, bb.Flash)
		}
	}
	return bb
}

// simSpec checks a simulated board's bugs and faults against the
// simulator's.
func (p *parser) simSpec(s *SimSpec, f map[string]*yaml.Node, what string) {
	if s.Agent != "" {
		for _, k := range []string{"bug", "faults"} {
			if f[k] != nil {
				p.Errorf(f[k], "%s: sim: %s applies to the Go simulator only, not to the C agent (agent: %s)", what, k, s.Agent)
			}
		}
		return
	}
	if s.Bug != "" {
		seen := map[string]bool{}
		for _, b := range strings.Split(s.Bug, ",") {
			b = strings.TrimSpace(b)
			switch _, ok := sim.LookupBug(b); {
			case b == "":
				p.Errorf(f["bug"], "%s: sim: bug: empty name in %q (names are comma-separated)", what, s.Bug)
			case !ok:
				p.Errorf(f["bug"], "%s: sim: unknown bug %q (known: %s)", what, b, strings.Join(sim.BugNames(), ", "))
			case seen[b]:
				p.Errorf(f["bug"], "%s: sim: bug %q given twice", what, b)
			}
			seen[b] = true
		}
	}
	if _, err := sim.ParseFaults(s.Faults); err != nil {
		p.Errorf(f["faults"], "%s: sim: faults: %v", what, err)
	}
}

// hostNameRE matches a DNS name (RFC 1123 labels), optionally with a
// leading wildcard label.
var hostNameRE = regexp.MustCompile(`^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

func validHost(h string) bool {
	return net.ParseIP(h) != nil || (len(h) <= 253 && hostNameRE.MatchString(h))
}

// dpsAddrs checks and completes the mock's listen address, the host boards
// connect to and the extra certificate names.
func (p *parser) dpsAddrs(d *BenchDPS, f map[string]*yaml.Node) {
	if f["listen"] != nil {
		host, port, err := net.SplitHostPort(d.Listen)
		n, perr := strconv.Atoi(port)
		switch {
		case d.Listen == "":
			p.Errorf(f["listen"], "dps: listen is empty (default %s)", DefaultDPSListen)
		case err != nil:
			p.Errorf(f["listen"], "dps: listen %q: want host:port such as 0.0.0.0:8443 or 127.0.0.1:0", d.Listen)
		case perr != nil || n < 0 || n > 65535:
			p.Errorf(f["listen"], "dps: listen %q: port %q: want 0-65535 (0 = any free port)", d.Listen, port)
		case host != "" && host != "localhost" && net.ParseIP(host) == nil:
			p.Errorf(f["listen"], "dps: listen %q: host %q: want an IP address of this machine (0.0.0.0 = all), \"localhost\" or nothing", d.Listen, host)
		}
	}
	if f["host"] != nil {
		if !validHost(d.Host) {
			p.Errorf(f["host"], "dps: host %q: want a DNS name or an IP address", d.Host)
		} else if lh, _, err := net.SplitHostPort(d.ListenAddr()); err == nil {
			// An IP literal the mock does not listen on is unreachable.
			lip, hip := net.ParseIP(lh), net.ParseIP(d.Host)
			loopOnly := lh == "localhost" || (lip != nil && lip.IsLoopback())
			switch {
			case hip != nil && loopOnly && !hip.IsLoopback():
				p.Errorf(f["host"], "dps: host %s cannot reach the mock: it listens on loopback only (listen %s); listen on 0.0.0.0 or on %s", d.Host, d.ListenAddr(), d.Host)
			case hip != nil && lip != nil && !lip.IsUnspecified() && !loopOnly && !hip.Equal(lip):
				p.Errorf(f["host"], "dps: host %s is not the address the mock listens on (listen %s)", d.Host, d.ListenAddr())
			}
		}
	}
	for i, name := range d.SANs {
		if !validHost(name) {
			p.Errorf(f["san"].Content[i], "dps: san: %q: want a DNS name or an IP address", name)
		}
	}
	if d.Listen == "" {
		d.Listen = DefaultDPSListen
	}
	if d.Host == "" {
		d.Host = d.ConnectHost()
	}
}

func (p *parser) dps(n *yaml.Node) BenchDPS {
	const what = "dps"
	f := p.Fields(n, what, "mode", "enrollments", "assign_delay", "retry_after", "listen", "host", "san", "id_scope", "endpoint",
		"api_version", "group_key_env", "device_key_env")
	d := BenchDPS{
		Mode: p.str(f, "mode", what), Enrollments: p.str(f, "enrollments", what),
		AssignDelay: p.duration(f, "assign_delay", what), RetryAfter: int(p.integer(f, "retry_after", what)),
		Listen: p.str(f, "listen", what), Host: p.str(f, "host", what), SANs: p.strList(f, "san", what),
		IDScope: p.str(f, "id_scope", what), Endpoint: p.str(f, "endpoint", what), APIVersion: p.str(f, "api_version", what),
		GroupKeyEnv: p.envName(f, "group_key_env", what), KeyEnv: p.envName(f, "device_key_env", what),
		Line: n.Line,
	}
	if d.Mode == "" {
		d.Mode = "mock"
	}
	onlyFor := func(mode string, keys ...string) {
		for _, k := range keys {
			if f[k] != nil {
				p.Errorf(f[k], "dps: %s applies to mode %s only (mode is %s)", k, mode, d.Mode)
			}
		}
	}
	switch d.Mode {
	case "mock":
		onlyFor("live", "id_scope", "endpoint", "group_key_env", "device_key_env")
		if d.RetryAfter < 0 || d.RetryAfter > 300 {
			p.Errorf(f["retry_after"], "dps: retry_after %d: want 0..300 seconds", d.RetryAfter)
		}
		p.dpsAddrs(&d, f)
	case "live":
		onlyFor("mock", "enrollments", "assign_delay", "retry_after", "listen", "host", "san")
		if d.IDScope == "" {
			p.Errorf(n, "dps: mode live needs id_scope")
		}
		if d.GroupKeyEnv == "" && d.KeyEnv == "" {
			p.Errorf(n, "dps: mode live needs group_key_env or device_key_env (names of environment variables holding the keys)")
		}
	default:
		p.Errorf(f["mode"], "dps: unknown mode %q (known: mock, live)", d.Mode)
	}
	return d
}

// FlashCommand expands a board's flash template.
func (b BenchBoard) FlashCommand(port, firmware string) string {
	r := strings.NewReplacer("{port}", port, "{firmware}", firmware, "{board}", b.Name)
	return r.Replace(b.Flash)
}

// DraftBench renders a bench file for the given boards (used by
// "hiltest ports --yaml"); entries without a profile get a comment.
func DraftBench(boards []BenchBoard) []byte {
	var buf bytes.Buffer
	buf.WriteString("# Bench inventory drafted by hiltest ports --yaml. Check names, firmware and dialects.\n")
	buf.WriteString("boards:\n")
	for _, b := range boards {
		fmt.Fprintf(&buf, "  - name: %s\n", yamlScalar(b.Name))
		if b.Profile == "" {
			buf.WriteString("    # no built-in profile matches this port's USB IDs; pick one\n")
			fmt.Fprintf(&buf, "    profile: %s\n", yamlScalar(ProfileNames()[0]))
		} else {
			fmt.Fprintf(&buf, "    profile: %s\n", yamlScalar(b.Profile))
		}
		if b.USB != nil {
			fmt.Fprintf(&buf, "    usb: {vid: %s, pid: %s", yamlScalar(b.USB.VID), yamlScalar(b.USB.PID))
			if b.USB.Serial != "" {
				fmt.Fprintf(&buf, ", serial: %s", yamlScalar(b.USB.Serial))
			}
			buf.WriteString("}\n")
			if b.Port != "" {
				fmt.Fprintf(&buf, "    # currently at %s\n", b.Port)
			}
		} else {
			fmt.Fprintf(&buf, "    port: %s\n", yamlScalar(b.Port))
		}
		if b.Baud > 0 {
			fmt.Fprintf(&buf, "    baud: %d\n", b.Baud)
		}
		fmt.Fprintf(&buf, "    dialect: %s\n", yamlScalar(orDefault(b.Dialect, "default")))
		if len(b.Labels) > 0 {
			var ls []string
			for _, l := range b.Labels {
				ls = append(ls, yamlScalar(l))
			}
			fmt.Fprintf(&buf, "    labels: [%s]\n", strings.Join(ls, ", "))
		}
	}
	buf.WriteString("dps:\n  mode: mock\n  enrollments: \"\"   # \"\" = the built-in demo set\n")
	buf.WriteString("wifi:\n  ssid_env: HILTEST_WIFI_SSID\n  password_env: HILTEST_WIFI_PASSWORD\n")
	return buf.Bytes()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// yamlScalar renders s as a YAML scalar, quoted when plain style would
// change its meaning.
func yamlScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(out), "\n")
}
