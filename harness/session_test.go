package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func testConfig(p *peer, method boards.ResetMethod) SessionConfig {
	return SessionConfig{
		Name:             "b1",
		Port:             p.link,
		Profile:          boards.Profile{Name: "test", Baud: 115200, Reset: method, BootTime: 100 * time.Millisecond},
		CommandTimeout:   2 * time.Second,
		ReadyTimeout:     2 * time.Second,
		ReconnectTimeout: 3 * time.Second,
		Logf:             func(string, ...any) {},
	}
}

// checkLeaks fails the test if goroutines it started still run once it
// and its cleanups are done. Call it first: cleanups run last registered
// first, so the check runs after the others.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// startPeer starts a scripted peer that is closed when the test ends.
func startPeer(t *testing.T) *peer {
	t.Helper()
	p := newPeer(t)
	t.Cleanup(p.close)
	return p
}

// openSession opens a session with cfg, bounded by a timeout so that a
// hang fails the test; the session is closed when the test ends.
func openSession(t *testing.T, cfg SessionConfig) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	require.NoError(t, err, "open %s on %s", cfg.Name, cfg.Port)
	t.Cleanup(func() { s.Close() })
	return s
}

// peerSession starts a scripted peer and opens a session on it with
// testConfig(p, method).
func peerSession(t *testing.T, method boards.ResetMethod) (*peer, *Session) {
	t.Helper()
	p := startPeer(t)
	return p, openSession(t, testConfig(p, method))
}

// waitUntil waits up to five seconds for cond to hold.
func waitUntil(t *testing.T, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 10*time.Millisecond, msgAndArgs...)
}

// waitReopens waits for the session to have re-opened its port n times.
func waitReopens(t *testing.T, s *Session, n int) {
	t.Helper()
	waitUntil(t, func() bool { return s.Stats().Reopens == n }, "waiting for %d re-opens", n)
}

// requireEcho pings s with data and checks that the answer carries it back.
func requireEcho(t *testing.T, s *Session, data string) {
	t.Helper()
	f, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", data))
	require.NoError(t, err, "PING data=%s", data)
	assert.Equal(t, data, f.String("data"))
}

// requireRebootReported checks that the next call on s fails with
// ErrBoardReset, with each of wants in its message, and that the call
// after it succeeds.
func requireRebootReported(t *testing.T, s *Session, wants ...string) {
	t.Helper()
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrBoardReset)
	for _, w := range wants {
		assert.Contains(t, err.Error(), w)
	}
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err, "the call after the reported reboot")
}

func outputText(lines []LogLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestOpenResetMethods(t *testing.T) {
	tests := []struct {
		method    boards.ResetMethod
		wantReset int // RESET verbs the board received
		wantCtl   []string
	}{
		{boards.ResetNone, 1, nil},
		// The sim method drives the control socket with esptool's HardReset.
		{boards.ResetSim, 0, []string{"dtr 0", "rts 1", "rts 0"}},
		// A pty has no modem lines (ENOTTY): fall back to the RESET verb.
		{boards.ResetClassic, 1, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			checkLeaks(t)
			p := startPeer(t)
			var logs []string
			cfg := testConfig(p, tt.method)
			cfg.Logf = func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
			s := openSession(t, cfg)

			assert.Equal(t, tt.wantReset, p.count(protocol.VerbReset))
			assert.Equal(t, tt.wantCtl, p.ctlLines())
			info := s.Info()
			assert.Equal(t, 1, info.Proto)
			assert.Equal(t, "pty-peer", info.Board)
			assert.True(t, info.HasCap(protocol.CapBlob))
			out := outputText(s.TakeOutput())
			assert.Contains(t, out, "rst:0x1 (POWERON_RESET)")
			assert.Contains(t, out, "[READY reason=")
			if tt.method == boards.ResetClassic {
				assert.Contains(t, strings.Join(logs, "\n"), "hardware reset unsupported")
			}
			requireEcho(t, s, "hi there")
		})
	}
}

func TestOpenNoReset(t *testing.T) {
	checkLeaks(t)
	p := startPeer(t)
	cfg := testConfig(p, boards.ResetSim)
	cfg.NoReset = true
	openSession(t, cfg)
	assert.Empty(t, p.ctlLines())
	assert.Equal(t, 0, p.count(protocol.VerbReset))
	assert.Equal(t, 1, p.count(protocol.VerbHello))
}

func TestOpenFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *peer, cfg *SessionConfig)
		want  string
	}{
		{"missing port", func(p *peer, cfg *SessionConfig) { cfg.Port = p.dir + "/nope" }, "no such file"},
		{"no port at all", func(p *peer, cfg *SessionConfig) { cfg.Port = "" }, "no port and no USB match"},
		{"not a tty", func(p *peer, cfg *SessionConfig) { cfg.Port = "/dev/null" }, "Invalid serial port"},
		{"silent board", func(p *peer, cfg *SessionConfig) {
			p.set(func() { p.silent = true })
			cfg.ReadyTimeout = 200 * time.Millisecond
			cfg.CommandTimeout = 200 * time.Millisecond
		}, "did not answer in time"},
		{"protocol too new", func(p *peer, cfg *SessionConfig) { p.set(func() { p.proto = "2" }) }, "protocol 2"},
		{"tiny max frame", func(p *peer, cfg *SessionConfig) { p.set(func() { p.max = 100 }) }, "below the minimum"},
		{"usb no match", func(p *peer, cfg *SessionConfig) {
			cfg.Port = ""
			cfg.USB = &boards.USBMatch{VID: "10c4", PID: "ea60"}
			cfg.Ports = func() ([]PortInfo, error) { return nil, nil }
		}, "no serial port matches USB 10c4:ea60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := startPeer(t)
			cfg := testConfig(p, boards.ResetNone)
			cfg.NoReset = true
			tt.setup(p, &cfg)
			s, err := Open(context.Background(), cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestOpenByUSBMatch(t *testing.T) {
	checkLeaks(t)
	p := startPeer(t)
	cfg := testConfig(p, boards.ResetNone)
	cfg.Port = ""
	cfg.USB = &boards.USBMatch{VID: "10C4", PID: "ea60", Serial: "0001"}
	cfg.Ports = func() ([]PortInfo, error) {
		return []PortInfo{
			{Name: "/dev/ttyUSB9", IsUSB: true, VID: "10c4", PID: "ea60", Serial: "0002"},
			{Name: p.link, IsUSB: true, VID: "10c4", PID: "ea60", Serial: "0001"},
		}, nil
	}
	s := openSession(t, cfg)
	assert.Equal(t, p.link, s.Path())
}

func TestCallFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    []action
		wantErr   error
		wantPings int // PING requests the board saw
		check     func(t *testing.T, st SessionStats, out string)
	}{
		{name: "clean", wantPings: 1, check: func(t *testing.T, st SessionStats, out string) {
			// At least the PING and its answer, on top of the handshake.
			assert.Greater(t, st.BytesOut, len("@@HIL REQ 3 PING data=abc *00000000\n"))
			assert.Greater(t, st.BytesIn, len("@@HIL OK 3 PING data=abc *00000000\n"))
		}},
		{name: "bad crc retried", faults: []action{actBadCRC}, wantPings: 2,
			check: func(t *testing.T, st SessionStats, out string) {
				assert.Equal(t, 1, st.BadCRC)
				assert.Equal(t, 1, st.Retries)
				assert.Contains(t, out, "BAD_CRC")
			}},
		{name: "bad crc twice", faults: []action{actBadCRC, actBadCRC}, wantPings: 3},
		{name: "bad crc always", faults: []action{actBadCRC, actBadCRC, actBadCRC}, wantPings: 3, wantErr: protocol.ErrBadCRC},
		{name: "lost answer retried", faults: []action{actDrop}, wantPings: 2,
			check: func(t *testing.T, st SessionStats, out string) { assert.Equal(t, 1, st.Timeouts) }},
		{name: "lost answers", faults: []action{actDrop, actDrop, actDrop}, wantPings: 3, wantErr: ErrTimeout},
		{name: "stale seq discarded", faults: []action{actStale}, wantPings: 1,
			check: func(t *testing.T, st SessionStats, out string) {
				assert.Equal(t, 2, st.Stale)
				assert.Equal(t, 0, st.Retries)
			}},
		{name: "junk before answer", faults: []action{actJunk}, wantPings: 1,
			check: func(t *testing.T, st SessionStats, out string) {
				assert.Contains(t, out, "wifi: connected")
				assert.Contains(t, out, "partial line without end ")
			}},
		{name: "garbled request resent", faults: []action{actGarbledReq}, wantPings: 2},
		{name: "busy retried", faults: []action{actBusy}, wantPings: 2},
		{name: "reboot mid-command", faults: []action{actReady}, wantPings: 1, wantErr: ErrBoardReset,
			check: func(t *testing.T, st SessionStats, out string) {
				assert.Contains(t, out, "reason=watchdog")
				assert.GreaterOrEqual(t, st.Resets, 2)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := startPeer(t)
			cfg := testConfig(p, boards.ResetNone)
			for _, a := range tt.faults {
				if a == actDrop {
					// Every lost answer costs a full timeout.
					cfg.CommandTimeout = 700 * time.Millisecond
				}
			}
			s := openSession(t, cfg)
			s.TakeOutput()
			p.setFaults(protocol.VerbPing, tt.faults...)
			hellos := p.count(protocol.VerbHello)
			f, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "abc"))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, f)
			} else {
				require.NoError(t, err)
				assert.Equal(t, "abc", f.String("data"))
				assert.Equal(t, protocol.KindOK, f.Kind)
			}
			assert.Equal(t, tt.wantPings, p.count(protocol.VerbPing))
			// Every request went out with a new seq.
			seen := map[uint16]bool{}
			for _, r := range p.received() {
				assert.False(t, seen[r.Seq], "seq %d reused", r.Seq)
				seen[r.Seq] = true
			}
			if errors.Is(tt.wantErr, ErrBoardReset) {
				assert.Equal(t, hellos+1, p.count(protocol.VerbHello), "re-handshake after the reboot")
			}
			if tt.check != nil {
				tt.check(t, s.Stats(), outputText(s.TakeOutput()))
			}
			// The session still works.
			requireEcho(t, s, "after")
		})
	}
}

func TestRemoteErrorAndCapability(t *testing.T) {
	checkLeaks(t)
	p := startPeer(t)
	p.set(func() { p.caps = "ping,blob" })
	s := openSession(t, testConfig(p, boards.ResetNone))

	_, err := s.Call(context.Background(), "NO.SUCH.VERB")
	var re *protocol.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, protocol.CodeUnknownVerb, re.Code)

	_, err = s.Call(context.Background(), protocol.VerbDerive, protocol.String("reg_id", "x"))
	require.ErrorIs(t, err, ErrNoCapability)
	assert.Equal(t, 0, p.count(protocol.VerbDerive), "a verb the board lacks is never sent")
}

func TestRebootBetweenRequests(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetNone)
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err)
	resets := s.Stats().Resets
	p.boot("brownout")
	// Wait until the session has seen the READY (no timing assumption:
	// poll the counter).
	waitUntil(t, func() bool { return s.Stats().Resets > resets })
	requireRebootReported(t, s, "brownout")
}

func TestResetVerbAndReset(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetSim)
	hellos := p.count(protocol.VerbHello)
	f, err := s.Call(context.Background(), protocol.VerbReset)
	require.NoError(t, err)
	assert.Equal(t, protocol.KindOK, f.Kind)
	assert.Equal(t, hellos+1, p.count(protocol.VerbHello)-s.Stats().Retries)
	require.NoError(t, s.Reset(context.Background()))
	assert.Equal(t, hellos+2, p.count(protocol.VerbHello)-s.Stats().Retries)
	assert.Len(t, p.ctlLines(), 6, "two hard resets through the control socket")
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err)
}

func TestBlobRoundTrip(t *testing.T) {
	sizes := []int{10, 999, 1001, 4096, 20000}
	checkLeaks(t)
	p := startPeer(t)
	p.set(func() { p.max = 512 })
	s := openSession(t, testConfig(p, boards.ResetNone))
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i * 7) // mixes 1- and 3-byte encodings
			}
			puts := p.count(protocol.VerbBlobPut)
			f, err := s.Call(context.Background(), "ECHO", protocol.Bytes("data", data))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(data, []byte(f.String("data"))), "echo of %d bytes", n)
			var keys []string
			for _, a := range f.Args {
				keys = append(keys, a.Key)
			}
			assert.Equal(t, []string{"first", "data", "last"}, keys)
			if protocol.EncodedLen(data) > 400 {
				assert.Greater(t, p.count(protocol.VerbBlobPut), puts, "sent through BLOB.PUT")
			} else {
				assert.Equal(t, puts, p.count(protocol.VerbBlobPut))
			}
			for _, r := range p.received() {
				assert.LessOrEqual(t, len(protocol.AppendFrame(nil, r)), 512, "%s frame over the board's max", r.Verb)
			}
		})
	}
	_, err := s.Call(context.Background(), "ECHO", protocol.Bytes("data", make([]byte, 70000)))
	assert.ErrorContains(t, err, "blobs hold at most")
}

// A request that cannot fit the board's frame maximum is refused before
// anything is written, with an error wrapping protocol.ErrTooLong.
func TestTooLongRequest(t *testing.T) {
	small := func() []protocol.Arg {
		var args []protocol.Arg
		for i := 0; i < 20; i++ {
			args = append(args, protocol.String(fmt.Sprintf("k%02d", i), strings.Repeat("v", 40)))
		}
		return args
	}
	tests := []struct {
		name  string
		caps  string
		args  []protocol.Arg
		wants []string
	}{
		{"no blob capability", "ping", []protocol.Arg{protocol.Bytes("data", make([]byte, 2000))},
			[]string{"PING: request is ", "at most 512", `no "blob" capability`}},
		{"no argument worth a blob", "ping,blob", small(),
			[]string{"PING: request is ", "no argument is large enough"}},
		{"value over the blob maximum", "ping,blob", []protocol.Arg{protocol.Bytes("data", make([]byte, 70000))},
			[]string{"PING: argument data is 70000 bytes", "blobs hold at most 65536"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := startPeer(t)
			p.set(func() { p.max, p.caps = 512, tt.caps })
			s := openSession(t, testConfig(p, boards.ResetNone))
			before := len(p.received())
			_, err := s.Call(context.Background(), protocol.VerbPing, tt.args...)
			require.Error(t, err)
			assert.ErrorIs(t, err, protocol.ErrTooLong)
			assert.NotErrorIs(t, err, ErrTimeout)
			for _, w := range tt.wants {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, p.received(), before, "nothing is sent for a refused request")
			// The session is still usable.
			_, err = s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "short"))
			require.NoError(t, err)
		})
	}
}

func TestProgressAndLongVerb(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetNone)
	p.setFaults(protocol.VerbDPSRegister, actProgress)
	f, err := s.Call(context.Background(), protocol.VerbDPSRegister, protocol.Int("timeout", 1))
	require.NoError(t, err)
	assert.Equal(t, "assigned", f.String("status"))
	d, retry := s.timeoutFor(protocol.VerbDPSRegister, []protocol.Arg{protocol.Int("timeout", 30)})
	assert.Equal(t, 35*time.Second, d)
	assert.False(t, retry)
	d, _ = s.timeoutFor(protocol.VerbDPSRegister, nil)
	assert.Equal(t, 65*time.Second, d)
	d, retry = s.timeoutFor(protocol.VerbPing, nil)
	req := protocol.EncodedFrameLen(protocol.NewRequest(65535, protocol.VerbPing))
	assert.Equal(t, 2*time.Second+lineTime(req+s.cfg.MaxFrame, s.cfg.Baud), d)
	assert.True(t, retry)
}

func TestPortVanishesAndReturns(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetNone)
	first := s.Path()

	// Unplugged mid-command, back after a while: the call reports a reset.
	p.setFaults(protocol.VerbPing, actUnplug)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Call(context.Background(), protocol.VerbPing)
		errc <- err
	}()
	waitUntil(t, func() bool { return !p.plugged() })
	require.NoError(t, p.plug(true))
	err := <-errc
	require.ErrorIs(t, err, ErrBoardReset)
	assert.Contains(t, err.Error(), "port vanished")
	assert.Equal(t, 1, s.Stats().Reopens)
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err)
	assert.Equal(t, first, s.Path(), "re-opened by the same symlink")

	// Unplugged between commands: the next call reports it.
	p.unplug()
	require.NoError(t, p.plug(true))
	waitReopens(t, s, 2)
	requireRebootReported(t, s)
}

func TestPortGoneForGood(t *testing.T) {
	checkLeaks(t)
	p := startPeer(t)
	cfg := testConfig(p, boards.ResetNone)
	cfg.ReconnectTimeout = 300 * time.Millisecond
	s := openSession(t, cfg)
	p.setFaults(protocol.VerbPing, actUnplug)
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrBoardLost)
	assert.True(t, s.Lost())
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrBoardLost)
	require.ErrorIs(t, s.Reset(context.Background()), ErrBoardLost)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
}

// unansweredPingSession opens a session on a peer that never answers the
// next PING, with a command timeout long enough that only Close or the
// caller's context ends that call.
func unansweredPingSession(t *testing.T) (*peer, *Session) {
	t.Helper()
	p := startPeer(t)
	cfg := testConfig(p, boards.ResetNone)
	cfg.CommandTimeout = time.Minute
	s := openSession(t, cfg)
	p.setFaults(protocol.VerbPing, actDrop)
	return p, s
}

func TestCloseDuringCall(t *testing.T) {
	checkLeaks(t)
	p, s := unansweredPingSession(t)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Call(context.Background(), protocol.VerbPing)
		errc <- err
	}()
	waitUntil(t, func() bool { return p.count(protocol.VerbPing) == 1 })
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-errc, ErrClosed)
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrClosed)
}

func TestCallContextCancel(t *testing.T) {
	checkLeaks(t)
	p, s := unansweredPingSession(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for p.count(protocol.VerbPing) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := s.Call(ctx, protocol.VerbPing)
	require.ErrorIs(t, err, context.Canceled)
}

func TestParseHello(t *testing.T) {
	tests := []struct {
		args    []protocol.Arg
		want    BoardInfo
		wantErr string
	}{
		{args: []protocol.Arg{protocol.String("proto", "1"), protocol.String("caps", "ping, blob,")},
			want: BoardInfo{Proto: 1, MaxFrame: 4096, Caps: []string{"ping", "blob"}}},
		{args: []protocol.Arg{protocol.String("proto", "1"), protocol.String("max", "512"), protocol.String("blob_max", "8192")},
			want: BoardInfo{Proto: 1, MaxFrame: 512, BlobMax: 8192}},
		{args: nil, wantErr: "missing \"proto\""},
		{args: []protocol.Arg{protocol.String("proto", "0")}, wantErr: "protocol 0"},
		{args: []protocol.Arg{protocol.String("proto", "1"), protocol.String("max", "x")}, wantErr: "not a decimal"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			got, err := parseHello(protocol.NewOK(1, protocol.VerbHello, tt.args...))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRedactLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"@@HIL OK 3 DERIVE device_key=Jsm0lyGp= *EDD7CE77", "@@HIL OK 3 DERIVE device_key=[redacted] *EDD7CE77"},
		{"@@HIL OK 3 SAS sr=a%2Fb sig=abc token=Shared se=1 *0", "@@HIL OK 3 SAS sr=a%2Fb sig=[redacted] token=[redacted] se=1 *0"},
		{"@@HIL OK 3 PING data=key=x *0", "@@HIL OK 3 PING data=key=x *0"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, redactLine([]byte(tt.in)))
	}
}

func TestReopenByUSBMatch(t *testing.T) {
	checkLeaks(t)
	p := startPeer(t)
	cfg := testConfig(p, boards.ResetNone)
	cfg.Port = ""
	cfg.USB = &boards.USBMatch{VID: "303a", PID: "1001", Serial: "S1"}
	var lists atomic.Int32
	cfg.Ports = func() ([]PortInfo, error) {
		lists.Add(1)
		if !p.plugged() {
			return nil, nil
		}
		return []PortInfo{{Name: p.link, IsUSB: true, VID: "303a", PID: "1001", Serial: "S1"}}, nil
	}
	s := openSession(t, cfg)
	p.unplug()
	// The session looks for the port by USB identity while it is away.
	n := lists.Load()
	waitUntil(t, func() bool { return lists.Load() > n+1 })
	require.NoError(t, p.plug(true))
	waitReopens(t, s, 1)
	requireRebootReported(t, s)
}

// A READY sent just before a hard reset must not be taken for the READY
// after it: the next request would then see the later READY as a reboot.
func TestResetIgnoresEarlierReady(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetSim)
	p.set(func() { p.bootOnDTR, p.bootDelay = true, 300*time.Millisecond })
	resets := s.Stats().Resets
	hellos := p.count(protocol.VerbHello)
	require.NoError(t, s.Reset(context.Background()))
	assert.Equal(t, hellos+1, p.count(protocol.VerbHello), "no HELLO sent into the reset")
	out := outputText(s.TakeOutput())
	assert.Contains(t, out, "reason=poweron")
	assert.Contains(t, out, "reason=hw")
	assert.Equal(t, resets+2, s.Stats().Resets)
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err)
}

func TestDifferentBoardAfterReopen(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetNone)
	p.unplug()
	p.set(func() { p.mac = "24:0A:C4:99:99:99" })
	require.NoError(t, p.plug(true))
	waitReopens(t, s, 1)
	_, err := s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrBoardLost)
	assert.NotErrorIs(t, err, ErrBoardReset)
	assert.Contains(t, err.Error(), "a different board answered")
	assert.True(t, s.Lost())
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.ErrorIs(t, err, ErrBoardLost)
	assert.Equal(t, "24:0A:C4:00:00:01", s.Info().MAC)
}

// Boards on the chip's own USB-Serial-JTAG drop off the bus when reset:
// the session drives esptool's USB-JTAG hard reset on the modem lines,
// re-opens the port when it returns, and handshakes.
func TestUSBJTAGResetReenumerates(t *testing.T) {
	tests := []struct {
		name   string
		method boards.ResetMethod
		lines  []string
	}{
		{"usb-jtag", boards.ResetUSBJTAG, []string{"dtr 0", "rts 1", "rts 0"}},
		{"classic", boards.ResetClassic, []string{"dtr 0", "rts 1", "rts 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			p := startPeer(t)
			p.set(func() { p.reenumerate = tt.method == boards.ResetUSBJTAG; p.bootDelay = 50 * time.Millisecond })
			cfg := testConfig(p, tt.method)
			cfg.Profile.Reenumerates = tt.method == boards.ResetUSBJTAG
			cfg.OpenPort = openWithModemLines(p.link)
			s := openSession(t, cfg)
			assert.Equal(t, tt.lines, p.ctlLines())
			assert.Equal(t, 0, p.count(protocol.VerbReset), "reset through the modem lines")
			wantReopens := 0
			if tt.method == boards.ResetUSBJTAG {
				wantReopens = 1
			}
			assert.Equal(t, wantReopens, s.Stats().Reopens)

			require.NoError(t, s.Reset(context.Background()))
			assert.Equal(t, 2*wantReopens, s.Stats().Reopens)
			_, err := s.Call(context.Background(), protocol.VerbPing)
			require.NoError(t, err, "no spurious reset reported after the re-open")
		})
	}
}

// Requests read their answers on the caller's goroutine; between requests
// the reader goroutine reads again, so device output and a reboot that come
// while no request is in flight are seen without another request.
func TestOutputBetweenRequests(t *testing.T) {
	checkLeaks(t)
	p, s := peerSession(t, boards.ResetNone)
	for i := 0; i < 20; i++ {
		_, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "x"))
		require.NoError(t, err)
	}
	s.TakeOutput()
	p.write([]byte("I (99) app: idle line\r\n"))
	var out strings.Builder
	waitUntil(t, func() bool {
		out.WriteString(outputText(s.TakeOutput()))
		return strings.Contains(out.String(), "idle line")
	})

	resets := s.Stats().Resets
	p.boot("watchdog")
	waitUntil(t, func() bool { return s.Stats().Resets == resets+1 })
	requireRebootReported(t, s, "reason=watchdog")
}
