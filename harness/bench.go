package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
	"github.com/hiltest/hiltest/reference"
)

// Environment variables a bench reads.
const (
	// EnvWiFiSSID and EnvWiFiPassword are the default names of the Wi-Fi
	// variables when the bench file does not name others.
	EnvWiFiSSID     = "HILTEST_WIFI_SSID"
	EnvWiFiPassword = "HILTEST_WIFI_PASSWORD"
	// EnvDPSCAFile names a PEM file with the trust anchor boards get for a
	// live DPS (TLS.CA); unset = boards keep their built-in anchors.
	EnvDPSCAFile = "HILTEST_DPS_CA_FILE"
	// EnvDPSGroupKey and EnvDPSKey are the default names of the live DPS
	// key variables when the bench file does not name others.
	EnvDPSGroupKey = "HILTEST_DPS_GROUP_KEY"
	EnvDPSKey      = "HILTEST_DPS_KEY"
)

// BenchOptions configure OpenBench.
type BenchOptions struct {
	// Flash runs each board's flash command before opening its port.
	Flash        bool
	FlashTimeout time.Duration // 0 = DefaultFlashTimeout
	// SimBaud paces simulated boards' output (0 = the bench entry's baud, or unpaced).
	SimBaud int
	// LinkDir holds simulated boards' port symlinks and control sockets
	// ("" = a temporary directory per board).
	LinkDir string
	// DPS, when set, is used instead of bringing up the bench's DPS (the
	// caller owns it).
	DPS *DPSTarget
	// MockOptions adjust the mock DPS a mock bench starts (Enrollments is
	// filled from the bench unless set).
	MockOptions mockdps.Options
	// Getenv reads environment variables (nil = os.Getenv).
	Getenv func(string) string
	// NoPrepare skips preparing boards (TIME.SET, TLS.CA, DPS.CONFIG, NET.WIFI).
	NoPrepare bool
	// Session adjusts each board's session configuration before it opens.
	Session func(*SessionConfig)
	// ShowSecrets is passed to cases through Env.
	ShowSecrets bool
	// Now is the clock given to boards and cases (nil = time.Now).
	Now func() time.Time
	// Logf receives setup notes (nil = none).
	Logf func(format string, args ...any)
}

// BenchSession is an open bench: its DPS and a session to each board.
type BenchSession struct {
	Bench  *boards.Bench
	DPS    DPSTarget
	Mode   string // "mock" or "live"
	Boards []*BenchMember

	ownDPS *mockdps.Server
	once   sync.Once
}

// BenchMember is one board of an open bench.
type BenchMember struct {
	Decl     boards.BenchBoard
	Board    Board // nil when the board could not be opened (see SetupErr)
	Env      *Env
	Info     BoardInfo
	Flash    *FlashResult
	SetupErr error
	Setup    []string // preparation steps done
	Port     string   // the port opened

	session *Session
	sim     *sim.Board
	agent   *exec.Cmd
	tempDir string
	started time.Time
	// reprepare puts the board back in its prepared state after a reboot
	// (nil when preparing is off).
	reprepare func(ctx context.Context) error
}

// Name is the board's bench name.
func (m *BenchMember) Name() string { return m.Decl.Name }

// Sim returns the in-process simulated board behind the member, or nil.
func (m *BenchMember) Sim() *sim.Board { return m.sim }

// Session returns the member's session, or nil.
func (m *BenchMember) Session() *Session { return m.session }

// Board returns the named board's session, or nil.
func (b *BenchSession) Board(name string) Board {
	for _, m := range b.Boards {
		if m.Decl.Name == name {
			return m.Board
		}
	}
	return nil
}

// Member returns the named member, or nil.
func (b *BenchSession) Member(name string) *BenchMember {
	for _, m := range b.Boards {
		if m.Decl.Name == name {
			return m
		}
	}
	return nil
}

// Close closes every session, stops simulated boards and agents, and
// stops the mock DPS the bench started.
func (b *BenchSession) Close() error {
	var errs []error
	b.once.Do(func() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, m := range b.Boards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if b.ownDPS != nil {
			if err := b.ownDPS.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close mock DPS: %w", err))
			}
		}
	})
	return errors.Join(errs...)
}

func (m *BenchMember) close() error {
	var errs []error
	if m.session != nil {
		if err := m.session.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", m.Decl.Name, err))
		}
	}
	if m.sim != nil {
		if err := m.sim.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop simulated board %s: %w", m.Decl.Name, err))
		}
	}
	if m.agent != nil && m.agent.Process != nil {
		_ = m.agent.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = m.agent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = m.agent.Process.Kill()
			<-done
		}
	}
	if m.tempDir != "" {
		os.RemoveAll(m.tempDir)
	}
	return errors.Join(errs...)
}

// OpenBench brings a bench up: its DPS (a mock DPS started here, or the
// live one from environment variables), the simulated boards its entries
// declare, a session to each board (after flashing it when asked), and
// prepares each board (clock, trust anchor, DPS endpoint, Wi-Fi). A board
// that cannot be brought up is kept with its SetupErr set; the error is
// non-nil only when the bench as a whole cannot run (no DPS).
func OpenBench(ctx context.Context, bench *boards.Bench, opts BenchOptions) (*BenchSession, error) {
	if bench == nil {
		return nil, errors.New("open bench: no bench")
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bs := &BenchSession{Bench: bench}
	switch {
	case opts.DPS != nil:
		bs.DPS = *opts.DPS
		bs.Mode = "mock"
		if opts.DPS.Mock == nil {
			bs.Mode = "live"
		}
	case bench.DPS.Mode == "live":
		t, err := liveDPS(bench.DPS, getenv)
		if err != nil {
			return nil, err
		}
		bs.DPS = t
		bs.Mode = "live"
	default:
		t, srv, err := startMockDPS(bench.DPS, opts.MockOptions, now)
		if err != nil {
			return nil, err
		}
		bs.DPS = t
		bs.Mode = "mock"
		bs.ownDPS = srv
		logf("mock DPS listening on %s, boards connect to %s (id scope %s)", srv.Addr(), mockEndpoint(t), srv.IDScope())
	}

	bs.Boards = make([]*BenchMember, len(bench.Boards))
	var wg sync.WaitGroup
	for i, decl := range bench.Boards {
		m := &BenchMember{Decl: decl, started: time.Now()}
		m.Env = &Env{DPS: bs.DPS, Declared: decl, Now: now, ShowSecrets: opts.ShowSecrets}
		bs.Boards[i] = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.bringUp(ctx, bench, bs.DPS, opts, getenv, now, logf); err != nil {
				m.SetupErr = err
				logf("board %s: %v", decl.Name, err)
			}
		}()
	}
	wg.Wait()
	return bs, nil
}

// MockTarget describes a running mock DPS as a bench DPS.
func MockTarget(srv *mockdps.Server, enr *mockdps.Enrollments) (DPSTarget, error) {
	host, portStr, err := net.SplitHostPort(srv.Host())
	if err != nil {
		return DPSTarget{}, fmt.Errorf("mock DPS address %q: %w", srv.Host(), err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return DPSTarget{}, fmt.Errorf("mock DPS port %q: %w", portStr, err)
	}
	if enr == nil {
		enr = mockdps.DemoEnrollments()
	}
	return DPSTarget{Host: host, Port: port, CAPEM: srv.CAPEM(), IDScope: srv.IDScope(),
		APIVersion: reference.DefaultAPIVersion, Mock: srv, Enrollments: enr}, nil
}

// liveDPS builds the target of a live DPS from the bench and environment.
func liveDPS(d boards.BenchDPS, getenv func(string) string) (DPSTarget, error) {
	t := DPSTarget{IDScope: d.IDScope, APIVersion: reference.DefaultAPIVersion, Host: reference.DefaultEndpoint, Port: 443}
	if d.IDScope == "" {
		return t, errors.New("open bench: live DPS: the bench has no id_scope")
	}
	if d.APIVersion != "" {
		t.APIVersion = d.APIVersion
	}
	if d.Endpoint != "" {
		host, port, err := net.SplitHostPort(d.Endpoint)
		if err != nil {
			t.Host = d.Endpoint
		} else {
			p, err := strconv.Atoi(port)
			if err != nil {
				return t, fmt.Errorf("open bench: live DPS endpoint %q: bad port", d.Endpoint)
			}
			t.Host, t.Port = host, p
		}
	}
	groupEnv, keyEnv := d.GroupKeyEnv, d.KeyEnv
	if groupEnv == "" {
		groupEnv = EnvDPSGroupKey
	}
	if keyEnv == "" {
		keyEnv = EnvDPSKey
	}
	enr := &mockdps.Enrollments{IDScope: d.IDScope}
	if k := getenv(groupEnv); k != "" {
		enr.Groups = append(enr.Groups, mockdps.GroupEnrollment{Name: "live-group", PrimaryKey: k})
	}
	if k := getenv(keyEnv); k != "" {
		reg := getenv("HILTEST_DPS_REGISTRATION_ID")
		enr.Individual = append(enr.Individual, mockdps.IndividualEnrollment{RegistrationID: reg, PrimaryKey: k})
	}
	if len(enr.Groups) == 0 && len(enr.Individual) == 0 {
		return t, fmt.Errorf("open bench: live DPS: set %s (group enrollment key) or %s (individual key)", groupEnv, keyEnv)
	}
	t.Enrollments = enr
	if f := getenv(EnvDPSCAFile); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return t, fmt.Errorf("open bench: live DPS trust anchor: %w", err)
		}
		t.CAPEM = pem
	}
	return t, nil
}

// bringUp flashes, starts the simulated board, opens the session and
// prepares one board.
func (m *BenchMember) bringUp(ctx context.Context, bench *boards.Bench, dps DPSTarget, opts BenchOptions, getenv func(string) string, now func() time.Time, logf func(string, ...any)) error {
	d := m.Decl
	profile, ok := boards.LookupProfile(d.Profile)
	if d.Profile == "" {
		profile, ok = boards.LookupProfile("esp32-devkitc")
	}
	if d.Sim != nil {
		profile, ok = boards.LookupProfile("sim")
	}
	if !ok {
		return fmt.Errorf("unknown profile %q", d.Profile)
	}
	port := d.Port
	if opts.Flash && d.Flash != "" {
		cmd := FlashCommand(d.Flash, port, d.Firmware, d.Name)
		logf("board %s: flashing: %s", d.Name, cmd)
		res, err := Flash(ctx, cmd, opts.FlashTimeout)
		m.Flash = res
		if err != nil {
			return fmt.Errorf("flash failed: %w", err)
		}
	}
	baud := d.Baud
	if d.Sim != nil {
		p, err := m.startSim(ctx, opts)
		if err != nil {
			return err
		}
		port = p
		if opts.SimBaud > 0 {
			baud = opts.SimBaud // the simulated line's speed sets the session's timeouts
		}
	}
	m.Port = port
	cfg := SessionConfig{Name: d.Name, Port: port, USB: d.USB, Profile: profile, Baud: baud}
	if m.Flash != nil {
		// The board was just flashed and reset; USB-Serial-JTAG boards
		// re-enumerate: give the port time to come back.
		cfg.ReconnectTimeout = 10 * time.Second
	}
	if opts.Session != nil {
		opts.Session(&cfg)
	}
	s, err := openWithRetry(ctx, cfg, m.Flash != nil)
	if err != nil {
		return fmt.Errorf("open %s: %w", port, err)
	}
	m.session = s
	m.Board = s
	m.Info = s.Info()
	if opts.NoPrepare {
		return nil
	}
	m.reprepare = func(ctx context.Context) error {
		err := m.prepare(ctx, bench, dps, getenv, now)
		if errors.Is(err, ErrBoardReset) {
			// The board rebooted while being prepared (a brownout, a
			// watchdog): what was set is gone, so start over, once.
			err = m.prepare(ctx, bench, dps, getenv, now)
		}
		return err
	}
	return m.reprepare(ctx)
}

// resets returns how many times the member's board has booted since its
// session opened (0 for boards without a session of ours).
func (m *BenchMember) resets() int {
	if m.session == nil {
		return 0
	}
	return m.session.Stats().Resets
}

// openWithRetry opens a session; after flashing it retries for a while,
// since the port may be gone while the board re-enumerates.
func openWithRetry(ctx context.Context, cfg SessionConfig, retry bool) (*Session, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := Open(ctx, cfg)
		if err == nil || !retry || time.Now().After(deadline) || ctx.Err() != nil {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// startSim starts the simulated board (in process) or the C agent binary
// for a bench entry with sim: and returns its port path.
func (m *BenchMember) startSim(ctx context.Context, opts BenchOptions) (string, error) {
	d := m.Decl
	if d.Sim.Agent != "" {
		return m.startAgent(ctx, d.Sim.Agent, opts.LinkDir)
	}
	var bugs []string
	for _, b := range strings.Split(d.Sim.Bug, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bugs = append(bugs, b)
		}
	}
	baud := opts.SimBaud
	if baud == 0 {
		baud = d.Baud
	}
	cfg := sim.Config{
		Name: d.Name, LinkDir: opts.LinkDir, Dialect: d.Dialect, Bugs: bugs, Faults: d.Sim.Faults,
		Seed: d.Sim.Seed, Baud: baud, Firmware: d.Firmware, FirmwareVersion: d.FirmwareVersion,
	}
	// The board lives until the bench closes, not until the context that
	// opened the bench is done.
	b, err := sim.Start(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return "", fmt.Errorf("start simulated board: %w", err)
	}
	m.sim = b
	return b.Link(), nil
}

// startAgent runs the host build of the C agent (boards/esp32/host) and
// reads the "PTY <path>" line it prints once its pseudo-terminal is ready.
// The agent links <linkDir>/<name> to its pty and listens on <link>.ctl for
// the DTR/RTS lines, like a simulated board, so the session resets it the
// same way; the link is the port returned.
func (m *BenchMember) startAgent(ctx context.Context, path, linkDir string) (string, error) {
	d := m.Decl
	if linkDir == "" {
		dir, err := os.MkdirTemp("", "hiltest-agent-")
		if err != nil {
			return "", fmt.Errorf("start agent %s: %w", path, err)
		}
		m.tempDir = dir
		linkDir = dir
	}
	link := filepath.Join(linkDir, d.Name)
	args := []string{"--link", link, "--name", d.Name}
	if d.Dialect != "" {
		args = append(args, "--dialect", d.Dialect)
	}
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("start agent %s: %w", path, err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start agent %s: %w", path, err)
	}
	m.agent = cmd
	ch := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "PTY "); ok {
				ch <- nil
				// Keep draining until the agent exits, so it never blocks
				// on a full pipe (it exits when the pipe closes).
				_, _ = io.Copy(io.Discard, out)
				return
			}
		}
		ch <- fmt.Errorf("agent %s exited without printing its PTY line", path)
	}()
	select {
	case err := <-ch:
		if err != nil {
			return "", err
		}
		return link, nil
	case <-time.After(10 * time.Second):
		return "", fmt.Errorf("agent %s: no PTY line within 10s", path)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// prepare puts a board in a known state for the suite: its clock set to
// now, the DPS trust anchor loaded, the DPS endpoint configured, Wi-Fi
// joined when configured; each only if the board has the capability.
func (m *BenchMember) prepare(ctx context.Context, bench *boards.Bench, dps DPSTarget, getenv func(string) string, now func() time.Time) error {
	b := m.Board
	info := b.Info()
	step := func(verb string, args ...protocol.Arg) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := b.Call(cctx, verb, args...); err != nil {
			return fmt.Errorf("prepare: %s: %w", verb, err)
		}
		m.Setup = append(m.Setup, verb)
		return nil
	}
	if info.HasCap(protocol.CapTime) {
		if err := step(protocol.VerbTimeSet, protocol.Int("unix", now().Unix())); err != nil {
			return err
		}
	}
	if info.HasCap(protocol.CapTLSCA) && len(dps.CAPEM) > 0 {
		if err := step(protocol.VerbTLSCA, protocol.Bytes("pem", dps.CAPEM)); err != nil {
			return err
		}
	}
	if info.HasCap(protocol.CapDPSConfig) && dps.Host != "" {
		port := dps.Port
		if port == 0 {
			port = 443
		}
		args := []protocol.Arg{protocol.String("host", dps.Host), protocol.Int("port", int64(port))}
		if dps.APIVersion != "" {
			args = append(args, protocol.String("api_version", dps.APIVersion))
		}
		if err := step(protocol.VerbDPSConfig, args...); err != nil {
			return err
		}
	}
	ssidEnv, passEnv := bench.WiFi.SSIDEnv, bench.WiFi.PasswordEnv
	if ssidEnv == "" {
		ssidEnv = EnvWiFiSSID
	}
	if passEnv == "" {
		passEnv = EnvWiFiPassword
	}
	if ssid := getenv(ssidEnv); ssid != "" && info.HasCap(protocol.CapNetWiFi) {
		if err := step(protocol.VerbNetWiFi, protocol.String("ssid", ssid), protocol.String("password", getenv(passEnv))); err != nil {
			return err
		}
	}
	return nil
}
