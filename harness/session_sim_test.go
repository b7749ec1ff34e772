package harness

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSim starts a simulated board and opens a session on it with the
// "sim" profile (reset through the control socket); both are closed when
// the test ends.
func startSim(t *testing.T, faults string) (*sim.Board, *Session) {
	t.Helper()
	b, err := sim.Start(context.Background(), sim.Config{Name: "sim-1", LinkDir: t.TempDir(), Faults: faults, Seed: 7})
	require.NoError(t, err, "start the simulator with faults %q", faults)
	t.Cleanup(func() { b.Close() })
	prof, ok := boards.LookupProfile("sim")
	require.True(t, ok)
	s := openSession(t, SessionConfig{Name: "sim-1", Port: b.Link(), Profile: prof,
		CommandTimeout: 500 * time.Millisecond, ReconnectTimeout: 5 * time.Second})
	return b, s
}

// openCtl connects to the control socket of the board at link; the
// connection is closed when the test ends.
func openCtl(t *testing.T, link string) *ctlLines {
	t.Helper()
	c, err := dialCtl(context.Background(), link)
	require.NoError(t, err, "control socket of %s", link)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSimOpenAndReset(t *testing.T) {
	checkLeaks(t)
	_, s := startSim(t, "")

	info := s.Info()
	assert.Equal(t, sim.DefaultFirmware, info.Firmware)
	assert.Equal(t, 1, info.Proto)
	assert.Equal(t, sim.MaxFrame, info.MaxFrame)
	assert.True(t, info.HasCap(protocol.CapBlob))
	out := outputText(s.TakeOutput())
	assert.Contains(t, out, "reason=hw", "reset through the control socket:\n%s", out)

	requireEcho(t, s, "sim")

	resets := s.Stats().Resets
	require.NoError(t, s.Reset(context.Background()))
	assert.Equal(t, resets+1, s.Stats().Resets)
	assert.Contains(t, outputText(s.TakeOutput()), "reason=hw")

	_, err := s.Call(context.Background(), protocol.VerbReset)
	require.NoError(t, err)
	assert.Contains(t, outputText(s.TakeOutput()), "reason=sw")
	_, err = s.Call(context.Background(), protocol.VerbPing)
	require.NoError(t, err)
}

// esptool's HardReset drives the simulator's auto-reset circuit model as it
// drives a devkit: EN held low while RTS is asserted, run mode after.
func TestSimHardResetSteps(t *testing.T) {
	checkLeaks(t)
	b, s := startSim(t, "")
	ctx := context.Background()
	c := openCtl(t, b.Link())
	before := s.Stats().Resets
	want := []string{"state=running", "state=reset", "state=running"}
	for i, step := range HardResetSequence(false) {
		require.NoError(t, runSequence(ctx, c, []ResetStep{step}))
		// EN rises through an RC delay (sim.ENDelay) after RTS is released.
		assert.Eventually(t, func() bool {
			st, err := c.Command("state")
			return err == nil && strings.Contains(st, want[i])
		}, 5*time.Second, time.Millisecond, "after %s", step)
	}
	// The board rebooted between requests: the next call says so, the one
	// after works.
	require.Eventually(t, func() bool { return s.Stats().Resets > before }, 10*time.Second, 10*time.Millisecond,
		"no READY after the hard reset; output:\n%s\nfaults: %v", outputText(s.TakeOutput()), b.FaultLog())
	requireRebootReported(t, s, "reason=hw")
}

// The bootloader sequences pass through "both lines asserted" for less than
// the EN RC delay, so the chip comes out of reset with IO0 low: the ROM
// download mode, no READY. HardReset brings it back to run mode.
func TestSimBootloaderSequences(t *testing.T) {
	checkLeaks(t)
	b, s := startSim(t, "")
	ctx := context.Background()
	c := openCtl(t, b.Link())
	state := func(want string) bool {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if st, err := c.Command("state"); err == nil && strings.Contains(st, want) {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	for _, seq := range [][]ResetStep{ClassicBootloaderSequence(DefaultResetDelay), UnixTightBootloaderSequence(DefaultResetDelay)} {
		// Line changes travel one socket round trip apart; on a starved
		// machine that can exceed the RC delay, so allow a few tries.
		download := false
		for try := 0; try < 3 && !download; try++ {
			require.NoError(t, runSequence(ctx, c, seq), FormatSequence(seq))
			download = state("state=download")
		}
		assert.True(t, download, "%s: no download mode", FormatSequence(seq))
		require.NoError(t, runSequence(ctx, c, HardResetSequence(false)))
		assert.True(t, state("state=running"), "HardReset after %s", FormatSequence(seq))
	}
	out := outputText(s.TakeOutput())
	assert.Contains(t, out, "DOWNLOAD")
}

func TestSimFaults(t *testing.T) {
	tests := []struct {
		faults  string
		wantErr error
		check   func(t *testing.T, st SessionStats, out string)
	}{
		{faults: "corrupt=@PING", check: func(t *testing.T, st SessionStats, out string) {
			assert.Equal(t, 1, st.BadCRC)
			assert.Equal(t, 1, st.Retries)
		}},
		{faults: "drop=@PING", check: func(t *testing.T, st SessionStats, out string) {
			assert.Equal(t, 1, st.Retries)
		}},
		{faults: "noise=1", check: func(t *testing.T, st SessionStats, out string) {
			assert.Positive(t, st.JunkBytes)
		}},
		{faults: "slow=@PING"},
		{faults: "overlong=@PING", check: func(t *testing.T, st SessionStats, out string) {
			assert.Greater(t, st.JunkBytes, 4096)
		}},
		{faults: "brownout=@PING", wantErr: ErrBoardReset, check: func(t *testing.T, st SessionStats, out string) {
			assert.Contains(t, out, "reason=brownout")
		}},
		{faults: "unplug=@PING,unplug_for=300ms", wantErr: ErrBoardReset, check: func(t *testing.T, st SessionStats, out string) {
			assert.Equal(t, 1, st.Reopens)
		}},
		{faults: "hang=@PING", wantErr: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.faults, func(t *testing.T) {
			checkLeaks(t)
			_, s := startSim(t, tt.faults)
			before := s.Stats()
			f, err := s.Call(context.Background(), protocol.VerbPing, protocol.String("data", "payload"))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, "payload", f.String("data"))
			}
			if tt.check != nil {
				st := s.Stats()
				st.BadCRC -= before.BadCRC
				st.Retries -= before.Retries
				st.JunkBytes -= before.JunkBytes
				st.Reopens -= before.Reopens
				tt.check(t, st, outputText(s.TakeOutput()))
			}
			if err != nil {
				// The board is usable again, after a reset if it hangs.
				if !strings.Contains(err.Error(), "reset") {
					require.NoError(t, s.Reset(context.Background()))
				}
			}
			requireEcho(t, s, "again")
		})
	}
}

// Under random faults every call either returns the right answer or a
// typed error; never a wrong match.
func TestSimRandomFaultsNeverMismatch(t *testing.T) {
	checkLeaks(t)
	_, s := startSim(t, "noise=0.2,corrupt=0.05,drop=0.05,slow=0.05,brownout=0.02")
	ok := 0
	for i := 0; i < 80; i++ {
		data := []byte{byte(i), byte(i >> 8), ' ', '%', 0xff}
		f, err := s.Call(context.Background(), protocol.VerbPing, protocol.Bytes("data", data))
		if err != nil {
			assert.True(t, errorsIsAny(err, ErrBoardReset, ErrTimeout), "call %d: %v", i, err)
			continue
		}
		ok++
		got, _ := f.Get("data")
		require.True(t, bytes.Equal(data, got), "call %d: answer for another request", i)
	}
	assert.Greater(t, ok, 50)
	st := s.Stats()
	assert.Positive(t, st.BadCRC+st.BadFrame+st.Timeouts, "%+v", st)
}

func TestSimBlobs(t *testing.T) {
	checkLeaks(t)
	_, s := startSim(t, "")
	for _, n := range []int{100, 5000, 20000, sim.BlobMax} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*31 + i>>8)
		}
		// PING data this long goes through BLOB.PUT and comes back as
		// data.blob/data.len, fetched with BLOB.GET.
		f, err := s.Call(context.Background(), protocol.VerbPing, protocol.Bytes("data", data))
		require.NoError(t, err, "%d bytes", n)
		got, _ := f.Get("data")
		assert.True(t, bytes.Equal(data, got), "%d bytes came back different", n)
		assert.False(t, f.Has("data.blob"))
	}
	_, err := s.Call(context.Background(), protocol.VerbPing, protocol.Bytes("data", make([]byte, sim.BlobMax+1)))
	assert.ErrorContains(t, err, "blobs hold at most")
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
