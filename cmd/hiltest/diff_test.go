package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hiltest/hiltest/harness"
)

func writeReport(t *testing.T, dir, name string, fw string, statuses map[string]harness.Status) string {
	t.Helper()
	r := &harness.Report{Version: harness.ReportVersion, Tool: "hiltest"}
	b := harness.BoardReport{Name: "sim-1", Info: &harness.BoardInfo{Firmware: "hiltest-agent", FirmwareVersion: fw}}
	for _, id := range []string{"a/one", "a/two", "b/three"} {
		st, ok := statuses[id]
		if !ok {
			continue
		}
		b.Cases = append(b.Cases, harness.CaseResult{Board: "sim-1", ID: id, Status: st, Message: "msg " + string(st)})
	}
	r.Boards = []harness.BoardReport{b}
	p := filepath.Join(dir, name)
	require.NoError(t, r.WriteFile(p))
	return p
}

func TestDiffCLI(t *testing.T) {
	dir := t.TempDir()
	base := writeReport(t, dir, "base.json", "1.0.0", map[string]harness.Status{"a/one": "pass", "a/two": "fail", "b/three": "pass"})
	same := writeReport(t, dir, "same.json", "1.0.0", map[string]harness.Status{"a/one": "pass", "a/two": "fail", "b/three": "pass"})
	fixed := writeReport(t, dir, "fixed.json", "1.0.1", map[string]harness.Status{"a/one": "pass", "a/two": "pass", "b/three": "pass"})
	regressed := writeReport(t, dir, "regressed.json", "1.1.0", map[string]harness.Status{"a/one": "error", "a/two": "pass", "b/three": "pass"})
	junk := filepath.Join(dir, "junk.json")
	require.NoError(t, os.WriteFile(junk, []byte("not json"), 0o644))

	tests := []struct {
		name string
		args []string
		code int
		out  []string
		err  string
	}{
		{name: "same", args: []string{"diff", base, same}, code: 0, out: []string{"no differences"}},
		{name: "fixed", args: []string{"diff", base, fixed}, code: 0, out: []string{"fixed (1):", "sim-1 a/two [fail -> pass]", `firmware_version "1.0.0" -> "1.0.1"`}},
		{name: "regressed", args: []string{"diff", base, regressed}, code: 1, out: []string{"regression (1):", "sim-1 a/one [pass -> error]: msg error"}, err: "1 regression(s)"},
		{name: "json", args: []string{"diff", "--json", base, regressed}, code: 1, out: []string{`"kind": "regression"`}},
		{name: "one arg", args: []string{"diff", base}, code: 2, err: "want BASE.json RUN.json"},
		{name: "missing file", args: []string{"diff", base, filepath.Join(dir, "nope.json")}, code: 2, err: "nope.json"},
		{name: "not a report", args: []string{"diff", base, junk}, code: 2, err: "not a hiltest report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tt.args, &out, &errb)
			assert.Equal(t, tt.code, code, "stdout: %s\nstderr: %s", out.String(), errb.String())
			for _, o := range tt.out {
				assert.Contains(t, out.String(), o)
			}
			if tt.err != "" {
				assert.Contains(t, errb.String(), tt.err)
				assert.Equal(t, 1, strings.Count(errb.String(), "\n"), "one-line error")
			}
		})
	}
}
