package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/mockdps"
	"github.com/hiltest/hiltest/protocol"
)

// simBench returns a bench of simulated boards with the given names.
func simBench(names ...string) *boards.Bench {
	b := &boards.Bench{Path: "(test)", DPS: boards.BenchDPS{Mode: "mock"}}
	for i, n := range names {
		b.Boards = append(b.Boards, boards.BenchBoard{Name: n, Profile: "sim", Dialect: "default",
			Firmware: "hiltest-agent", FirmwareVersion: "1.0.0", Revision: "B", Labels: []string{"test"},
			Sim: &boards.SimSpec{Seed: int64(i + 1)}})
	}
	return b
}

// openSimBench opens a simulated bench for a test and closes it after.
func openSimBench(t *testing.T, bench *boards.Bench, opts BenchOptions) *BenchSession {
	t.Helper()
	if opts.LinkDir == "" {
		opts.LinkDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bs, err := OpenBench(ctx, bench, opts)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, bs.Close()) })
	return bs
}

func pingCase(id string) Case {
	return Case{ID: id, Title: "PING echoes its data", Requires: []string{protocol.CapPing}, Run: func(ctx context.Context, t *T) {
		f, err := t.Board.Call(ctx, protocol.VerbPing, protocol.String("data", "hello board"))
		if err != nil {
			t.Error(err)
			return
		}
		got, _ := f.Get("data")
		t.Compare("PING data", []byte("hello board"), got, false)
		t.Output("data", string(got))
	}}
}

// readEvents parses every complete line of an events.jsonl file.
func readEvents(t *testing.T, path string) []Event {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e Event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), "line %q", sc.Text())
		evs = append(evs, e)
	}
	return evs
}

func TestRunSimBench(t *testing.T) {
	bs := openSimBench(t, simBench("sim-a", "sim-b"), BenchOptions{})
	for _, m := range bs.Boards {
		require.NoError(t, m.SetupErr)
		assert.Contains(t, m.Setup, protocol.VerbTimeSet)
		assert.Contains(t, m.Setup, protocol.VerbTLSCA)
		assert.Contains(t, m.Setup, protocol.VerbDPSConfig)
	}
	cases := []Case{
		pingCase("t/ping"),
		{ID: "t/skip", Requires: []string{"teleport"}, Run: func(ctx context.Context, t *T) { t.Failf("must not run") }},
		{ID: "t/fail", Run: func(ctx context.Context, t *T) {
			if d := t.Compare("device key", []byte(testDeviceKey), []byte("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmerm0="), true); d != nil {
				t.Diagnose("last byte differs")
			}
			t.Output("device_key", testDeviceKey)
			t.Logf("log note with key=%s", testDeviceKey)
		}},
		{ID: "t/timeout", Timeout: 100 * time.Millisecond, Run: func(ctx context.Context, t *T) { <-ctx.Done() }},
		{ID: "t/panic", Run: func(ctx context.Context, t *T) { panic("case bug") }},
		{ID: "t/skip-inside", Run: func(ctx context.Context, t *T) { t.Skip("not today") }},
		pingCase("t/after"),
	}
	out := t.TempDir()
	var events bytes.Buffer
	rep, err := Run(context.Background(), bs, RunOptions{Cases: cases, OutDir: out, Events: &events})
	require.NoError(t, err)

	for _, b := range []string{"sim-a", "sim-b"} {
		want := map[string]Status{"t/ping": StatusPass, "t/skip": StatusSkip, "t/fail": StatusFail, "t/timeout": StatusError,
			"t/panic": StatusError, "t/skip-inside": StatusSkip, "t/after": StatusPass}
		for id, st := range want {
			c := rep.Case(b, id)
			require.NotNil(t, c, "%s %s", b, id)
			assert.Equal(t, st, c.Status, "%s %s: %s", b, id, c.Message)
		}
		br := rep.Board(b)
		require.NotNil(t, br.Info)
		assert.Equal(t, "hiltest-agent", br.Declared.Firmware)
		assert.Equal(t, "B", br.Declared.Revision)
		assert.NotEmpty(t, br.Info.Caps)
	}
	c := rep.Case("sim-a", "t/skip")
	assert.Equal(t, `board lacks capability "teleport"`, c.Message)
	c = rep.Case("sim-a", "t/timeout")
	assert.Equal(t, "case exceeded its timeout of 100ms", c.Message)
	c = rep.Case("sim-a", "t/panic")
	assert.Contains(t, c.Message, "case panicked: case bug")
	c = rep.Case("sim-a", "t/fail")
	assert.Equal(t, "device key differs at byte 42: last byte differs", c.Message, "secret comparisons keep the offset, not the bytes")
	require.Len(t, c.Failures, 1)
	assert.True(t, c.Failures[0].Divergence.Redacted)
	assert.Equal(t, "last byte differs", c.Failures[0].Diagnosis)
	assert.NotEqual(t, testDeviceKey, c.Outputs["device_key"])
	assert.Equal(t, "hello board", rep.Case("sim-a", "t/ping").Outputs["data"])

	// Nothing secret anywhere in the files.
	for _, name := range []string{ReportFile, JUnitFile, EventsFile} {
		data, err := os.ReadFile(filepath.Join(out, name))
		require.NoError(t, err)
		assert.NotContains(t, string(data), testDeviceKey, name)
	}
	jdata, err := os.ReadFile(filepath.Join(out, JUnitFile))
	require.NoError(t, err)
	j := validateJUnit(t, jdata)
	require.Len(t, j.Suites, 2)

	evs := readEvents(t, filepath.Join(out, EventsFile))
	require.Equal(t, "run-start", evs[0].Event)
	require.Equal(t, "run-end", evs[len(evs)-1].Event)
	n := 0
	for _, e := range evs {
		if e.Event == "case" {
			n++
			require.NotNil(t, e.Case)
		}
	}
	assert.Equal(t, 2*len(cases), n)
	assert.Equal(t, events.Len(), len(mustRead(t, filepath.Join(out, EventsFile))), "the Events writer gets the same stream")

	back, err := ReadReport(filepath.Join(out, ReportFile))
	require.NoError(t, err)
	assert.Equal(t, rep.Summary, back.Summary)
	assert.Equal(t, 14, back.Summary.Total)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

func TestRunShowSecrets(t *testing.T) {
	bs := openSimBench(t, simBench("sim-s"), BenchOptions{})
	cases := []Case{{ID: "t/secret", Run: func(ctx context.Context, t *T) {
		t.Output("device_key", testDeviceKey)
		t.Compare("device key", []byte(testDeviceKey), []byte("x"), true)
	}}}
	rep, err := Run(context.Background(), bs, RunOptions{Cases: cases, ShowSecrets: true})
	require.NoError(t, err)
	c := rep.Case("sim-s", "t/secret")
	assert.Equal(t, testDeviceKey, c.Outputs["device_key"])
	assert.Contains(t, c.Failures[0].Divergence.View, "Jsm0")
	assert.False(t, c.Failures[0].Divergence.Redacted)
}

func TestRunBoardLost(t *testing.T) {
	bs := openSimBench(t, simBench("sim-lost", "sim-ok"), BenchOptions{
		Session: func(c *SessionConfig) { c.ReconnectTimeout = 300 * time.Millisecond },
	})
	cases := []Case{
		pingCase("t/ping"),
		{ID: "t/unplug", Run: func(ctx context.Context, t *T) {
			if t.Board.Name() == "sim-lost" {
				// The simulated board goes away with its pty: the port is gone.
				if err := bs.Member("sim-lost").Sim().Close(); err != nil {
					t.Error(err)
					return
				}
			}
			_, err := t.Board.Call(ctx, protocol.VerbPing, protocol.String("data", "x"))
			if err != nil {
				t.Error(err)
			}
		}},
		pingCase("t/after-1"),
		pingCase("t/after-2"),
	}
	rep, err := Run(context.Background(), bs, RunOptions{Cases: cases})
	require.NoError(t, err)
	c := rep.Case("sim-lost", "t/unplug")
	assert.Equal(t, StatusError, c.Status)
	assert.True(t, strings.HasPrefix(c.Message, "board lost"), c.Message)
	for _, id := range []string{"t/after-1", "t/after-2"} {
		c := rep.Case("sim-lost", id)
		assert.Equal(t, StatusError, c.Status)
		assert.Equal(t, "board lost", c.Message)
	}
	for _, id := range []string{"t/ping", "t/unplug", "t/after-1", "t/after-2"} {
		assert.Equal(t, StatusPass, rep.Case("sim-ok", id).Status, "the other board goes on: %s", id)
	}
}

// resetViaControl reboots a simulated board through its control socket
// (EN low, then released), as an external reset would.
func resetViaControl(ctl string) error {
	c, err := net.DialTimeout("unix", ctl, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte("rts 1\n")); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond)
	_, err = c.Write([]byte("rts 0\n"))
	return err
}

func TestRunBoardResetDuringCase(t *testing.T) {
	bs := openSimBench(t, simBench("sim-r"), BenchOptions{
		MockOptions: mockdps.Options{AssignDelay: 3 * time.Second, RetryAfter: 1},
	})
	m := bs.Member("sim-r")
	cases := []Case{
		{ID: "t/register", Run: func(ctx context.Context, t *T) {
			env := t.Env
			errc := make(chan error, 1)
			go func() {
				time.Sleep(300 * time.Millisecond)
				errc <- resetViaControl(m.Sim().ControlPath())
			}()
			_, err := t.Board.Call(ctx, protocol.VerbDPSRegister,
				protocol.String("id_scope", env.DPS.IDScope), protocol.String("reg_id", mockdps.DemoDevice1),
				protocol.String("key", mockdps.DemoDevice1PrimaryKey), protocol.Int("ttl", 3600))
			if rerr := <-errc; rerr != nil {
				t.Error(rerr)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			t.Failf("DPS.REGISTER returned although the board rebooted")
		}},
		pingCase("t/after"),
	}
	rep, err := Run(context.Background(), bs, RunOptions{Cases: cases})
	require.NoError(t, err)
	c := rep.Case("sim-r", "t/register")
	assert.Equal(t, StatusError, c.Status)
	assert.Equal(t, "board reset during t/register", c.Message)
	assert.Equal(t, StatusPass, rep.Case("sim-r", "t/after").Status, "the board is usable after the reset")
}

func TestRunFlashFailure(t *testing.T) {
	bench := simBench("sim-f", "sim-g")
	bench.Boards[0].Flash = "sh -c 'echo flashing {port} with {firmware}; exit 3'"
	bench.Boards[0].Port = "/dev/ttyUSB7"
	bench.Boards[1].Flash = "echo flashing {board}"
	bs := openSimBench(t, bench, BenchOptions{Flash: true})
	rep, err := Run(context.Background(), bs, RunOptions{Cases: []Case{pingCase("t/ping")}})
	require.NoError(t, err)

	f := rep.Board("sim-f")
	require.NotNil(t, f.Flash)
	assert.Equal(t, 3, f.Flash.ExitStatus)
	assert.Equal(t, "flashing /dev/ttyUSB7 with hiltest-agent\n", f.Flash.Output)
	c := rep.Case("sim-f", "t/ping")
	assert.Equal(t, StatusError, c.Status)
	assert.Equal(t, "flash failed: flash command exited with status 3", c.Message)

	g := rep.Board("sim-g")
	require.NotNil(t, g.Flash)
	assert.True(t, g.Flash.OK())
	assert.Equal(t, "flashing sim-g\n", g.Flash.Output)
	assert.Equal(t, StatusPass, rep.Case("sim-g", "t/ping").Status)

	var buf bytes.Buffer
	require.NoError(t, rep.WriteJUnit(&buf))
	assert.Contains(t, buf.String(), "flash failed")
}

func TestRunCancelled(t *testing.T) {
	bs := openSimBench(t, simBench("sim-c"), BenchOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cases := []Case{
		{ID: "t/cancel", Run: func(ctx context.Context, t *T) { cancel(); <-ctx.Done(); t.Error(ctx.Err()) }},
		pingCase("t/never"),
	}
	rep, err := Run(ctx, bs, RunOptions{Cases: cases})
	require.NoError(t, err)
	assert.Equal(t, "run cancelled", rep.Case("sim-c", "t/cancel").Message)
	assert.Equal(t, "run cancelled", rep.Case("sim-c", "t/never").Message)
}

func TestRunNoCases(t *testing.T) {
	bs := &BenchSession{}
	_, err := Run(context.Background(), bs, RunOptions{Cases: []Case{pingCase("a")}, Only: "zzz"})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "zzz"))
	assert.False(t, errors.Is(err, context.Canceled))
}

func TestMatchCase(t *testing.T) {
	tests := []struct {
		pattern, id string
		want        bool
	}{
		{"", "sas/default/x", true},
		{"sas/*", "sas/default", true},
		{"sas/*", "sas/default/primary", true},
		{"sas/*", "derive/x", false},
		{"sas/*", "sas/a/b/c", true},
		{"sas/kat/*", "sas/keys/x", false},
		{"*/ping", "proto/ping/max-frame", true},
		{"derive", "derive/known-answer", true},
		{"derive,ping", "proto/ping", true},
		{"nothing", "proto/ping", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, MatchCase(tt.pattern, tt.id), "%q %q", tt.pattern, tt.id)
	}
}
