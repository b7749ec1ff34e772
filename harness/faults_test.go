package harness_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards"
	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/cases"
	"github.com/hiltest/hiltest/harness"
)

// faultSuite is the part of the built-in suite the fault tests run: SAS
// tokens (where the seeded bug shows) and the protocol basics.
const faultSuite = "sas/*,proto/ping,proto/time/round-trip"

// The seeded bug the fault tests carry: it makes SAS cases fail.
const faultBug = sim.BugSRNotEncoded

func runSuite(t *testing.T, bench *boards.Bench, opts harness.BenchOptions) *harness.Report {
	t.Helper()
	all, err := cases.Builtin()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.LinkDir = t.TempDir()
	bs, err := harness.OpenBench(ctx, bench, opts)
	require.NoError(t, err)
	defer bs.Close()
	rep, err := harness.Run(ctx, bs, harness.RunOptions{Cases: all, Only: faultSuite, DefaultTimeout: 20 * time.Second})
	require.NoError(t, err)
	return rep
}

func faultBench(faults string) *boards.Bench {
	return &boards.Bench{DPS: boards.BenchDPS{Mode: "mock", RetryAfter: 1}, Boards: []boards.BenchBoard{
		{Name: "clean", Profile: "sim", Dialect: "default", Sim: &boards.SimSpec{Faults: faults, Seed: 3}},
		{Name: "buggy", Profile: "sim", Dialect: "default", Sim: &boards.SimSpec{Bug: faultBug, Faults: faults, Seed: 4}},
	}}
}

func failedIDs(b *harness.BoardReport) map[string]bool {
	out := map[string]bool{}
	for _, c := range b.Cases {
		if c.Status == harness.StatusFail || c.Status == harness.StatusError {
			out[c.ID] = true
		}
	}
	return out
}

// TestFaultsDetectedWithoutFalsePass runs the suite on a clean board and on
// a board with a seeded bug, each with one class of line fault, and checks
// that the run completes, that the harness saw the fault, and that no case
// the bug fails without faults passes with them (a fault never hides a bug).
func TestFaultsDetectedWithoutFalsePass(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per fault class")
	}
	// Without faults: which cases the bug fails.
	base := runSuite(t, faultBench(""), harness.BenchOptions{})
	for _, c := range base.Board("clean").Cases {
		require.NotEqual(t, harness.StatusFail, c.Status, "clean board without faults: %s: %s", c.ID, c.Message)
		require.NotEqual(t, harness.StatusError, c.Status, "clean board without faults: %s: %s", c.ID, c.Message)
	}
	bugFails := failedIDs(base.Board("buggy"))
	require.NotEmpty(t, bugFails, "the seeded bug is caught without faults")

	stat := func(b *harness.BoardReport, keys ...string) int {
		n := 0
		for _, k := range keys {
			n += b.Stats[k]
		}
		return n
	}
	messages := func(b *harness.BoardReport, prefix string) int {
		n := 0
		for _, c := range b.Cases {
			if strings.HasPrefix(c.Message, prefix) {
				n++
			}
		}
		return n
	}
	// Each fault fires on the first SAS request, in the middle of the
	// suite (rates would make the test depend on the seed's luck).
	tests := []struct {
		fault string
		seen  func(b *harness.BoardReport) bool
	}{
		{"noise=1", func(b *harness.BoardReport) bool { return stat(b, "junk_bytes") > 0 }},
		{"corrupt=@SAS", func(b *harness.BoardReport) bool {
			return stat(b, "bad_crc", "bad_frame") > 0 && stat(b, "retries") > 0
		}},
		{"drop=@SAS", func(b *harness.BoardReport) bool { return stat(b, "bad_crc", "bad_frame", "timeouts") > 0 }},
		{"overlong=@SAS", func(b *harness.BoardReport) bool { return stat(b, "too_long") > 0 || stat(b, "junk_bytes") > 4096 }},
		{"brownout=@SAS", func(b *harness.BoardReport) bool {
			return stat(b, "resets") > 1 && messages(b, "board reset during") > 0
		}},
		{"hang=@SAS,hang_for=3s", func(b *harness.BoardReport) bool { return stat(b, "timeouts") > 0 }},
		{"unplug=@SAS,unplug_for=300ms", func(b *harness.BoardReport) bool {
			return stat(b, "reopens") > 0 || messages(b, "board lost") > 0
		}},
		{"slow=100ms", func(b *harness.BoardReport) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			rep := runSuite(t, faultBench(tt.fault), harness.BenchOptions{})
			for _, name := range []string{"clean", "buggy"} {
				b := rep.Board(name)
				require.NotNil(t, b)
				require.Empty(t, b.SetupError)
				assert.True(t, tt.seen(b), "%s: the harness did not see %s: stats %v, faults %v", name, tt.fault, b.Stats, b.Faults)
			}
			for _, c := range rep.Board("buggy").Cases {
				if bugFails[c.ID] {
					assert.NotEqual(t, harness.StatusPass, c.Status, "false pass: %s passes on the buggy board under %s", c.ID, tt.fault)
				}
			}
			var lines []string
			for _, c := range rep.Board("clean").Cases {
				if c.Status != harness.StatusPass && c.Status != harness.StatusSkip {
					lines = append(lines, fmt.Sprintf("%s %s: %s", c.ID, c.Status, c.Message))
				}
			}
			t.Logf("clean board under %s: %d non-passing cases %v; stats %v", tt.fault, len(lines), lines, rep.Board("clean").Stats)
		})
	}
}
