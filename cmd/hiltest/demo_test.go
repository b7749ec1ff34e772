package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/boards/sim"
	"github.com/hiltest/hiltest/harness"
)

func TestDemo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--out", out, "--seed", "7"}, &stdout, &stderr)
	text := stdout.String()
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", text, stderr.String())
	assert.Contains(t, text, "demo: PASS")
	for _, b := range sim.Bugs() {
		assert.Contains(t, text, "(bug "+b.Name+") caught and named: board sim-", b.Name)
	}
	for _, f := range demoFaults {
		assert.Contains(t, text, "(fault "+f.name+": "+f.spec+") detected")
	}
	rep, err := harness.ReadReport(filepath.Join(out, harness.ReportFile))
	require.NoError(t, err)
	assert.Equal(t, 3+len(sim.Bugs())+len(demoFaults), len(rep.Boards))
	checkJUnit(t, filepath.Join(out, harness.JUnitFile))
	// No secret leaks into the reports by default.
	assert.NotContains(t, text, "q9+Nuw6LinAPOnExjvpUKaecInDPxI7FWmDlw67a3s8zCl8WCNxxPPW0zwReB0aoRbc8b+ASzbHtGHWVT/vtqg==")
}

func TestDemoBugCausesCoverEveryBug(t *testing.T) {
	for _, b := range sim.Bugs() {
		assert.NotEmpty(t, bugCauses[b.Name], "bug %s has no expected cause", b.Name)
	}
	assert.Len(t, bugCauses, len(sim.Bugs()), "no stale entries")
}

func TestBugNamed(t *testing.T) {
	fail := harness.CaseResult{Board: "sim-9", ID: "sas/x", Status: harness.StatusFail, Message: "token differs at byte 40",
		Failures: []harness.FailureReport{{Message: "token differs at byte 40", Diagnosis: "sr not URL-encoded (raw '/' in the resource)"}}}
	pass := harness.CaseResult{Board: "sim-9", ID: "sas/y", Status: harness.StatusPass}
	tests := []struct {
		name    string
		bug     string
		results []harness.CaseResult
		named   bool
		line    string
	}{
		{"named", sim.BugSRNotEncoded, []harness.CaseResult{pass, fail}, true, "board sim-9: sas/x: token differs at byte 40: sr not URL-encoded"},
		{"caught, other cause", sim.BugMissingSKN, []harness.CaseResult{fail}, false, "board sim-9: sas/x"},
		{"not caught", sim.BugMissingSKN, []harness.CaseResult{pass}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			named, line := bugNamed(tt.bug, tt.results)
			assert.Equal(t, tt.named, named)
			assert.True(t, strings.HasPrefix(line, tt.line), line)
		})
	}
}

// TestDemoWithAgent adds the host build of the C agent as a board when it
// is built (make -C boards/esp32/host).
func TestDemoWithAgent(t *testing.T) {
	agent := filepath.Join("..", "..", DefaultAgentPath)
	if _, err := os.Stat(agent); err != nil {
		t.Skipf("the C agent's host build is not there (%v)", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	code := run([]string{"demo", "--out", out, "--agent", agent, "--boards", "1", "--no-faults"}, &stdout, &stderr)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Contains(t, stdout.String(), "ok    agent-1 (C agent, default)")
	rep, err := harness.ReadReport(filepath.Join(out, harness.ReportFile))
	require.NoError(t, err)
	b := rep.Board("agent-1")
	require.NotNil(t, b)
	require.NotNil(t, b.Info)
	assert.Equal(t, 0, b.Summary.Fail+b.Summary.Error)
	assert.Greater(t, b.Summary.Pass, 50)
}
