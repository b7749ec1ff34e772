package harness

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func reportOf(fw string, cases ...CaseResult) *Report {
	r := &Report{Version: ReportVersion}
	byBoard := map[string]*BoardReport{}
	for _, c := range cases {
		b := byBoard[c.Board]
		if b == nil {
			r.Boards = append(r.Boards, BoardReport{Name: c.Board, Info: &BoardInfo{FirmwareVersion: fw}})
			b = &r.Boards[len(r.Boards)-1]
			byBoard[c.Board] = b
		}
		b.Cases = append(b.Cases, c)
		// pointers into r.Boards stay valid only until the next append
		byBoard = map[string]*BoardReport{}
		for i := range r.Boards {
			byBoard[r.Boards[i].Name] = &r.Boards[i]
		}
	}
	r.summarize()
	return r
}

func cr(board, id string, s Status, msg string, outputs map[string]string) CaseResult {
	return CaseResult{Board: board, ID: id, Status: s, Message: msg, Outputs: outputs}
}

func TestDiff(t *testing.T) {
	tok1 := map[string]string{"sr": "0ne%2Fregistrations%2Fd1"}
	tok2 := map[string]string{"sr": "0ne%2fregistrations%2fd1"}
	tests := []struct {
		name       string
		base, run  []CaseResult
		kinds      []ChangeKind
		regression bool
	}{
		{name: "no change", base: []CaseResult{cr("b", "c", StatusPass, "", tok1)}, run: []CaseResult{cr("b", "c", StatusPass, "", tok1)}},
		{name: "new failure", base: []CaseResult{cr("b", "c", StatusPass, "", nil)}, run: []CaseResult{cr("b", "c", StatusFail, "differs at byte 3", nil)},
			kinds: []ChangeKind{ChangeRegression}, regression: true},
		{name: "new error", base: []CaseResult{cr("b", "c", StatusSkip, "", nil)}, run: []CaseResult{cr("b", "c", StatusError, "board lost", nil)},
			kinds: []ChangeKind{ChangeRegression}, regression: true},
		{name: "fixed", base: []CaseResult{cr("b", "c", StatusFail, "x", nil)}, run: []CaseResult{cr("b", "c", StatusPass, "", nil)},
			kinds: []ChangeKind{ChangeFixed}},
		{name: "fails differently", base: []CaseResult{cr("b", "c", StatusFail, "x", nil)}, run: []CaseResult{cr("b", "c", StatusFail, "y", nil)},
			kinds: []ChangeKind{ChangeStillFails}},
		{name: "same failure", base: []CaseResult{cr("b", "c", StatusFail, "x", nil)}, run: []CaseResult{cr("b", "c", StatusFail, "x", nil)}},
		{name: "changed outputs", base: []CaseResult{cr("b", "c", StatusPass, "", tok1)}, run: []CaseResult{cr("b", "c", StatusPass, "", tok2)},
			kinds: []ChangeKind{ChangeOutputs}},
		{name: "case added and removed", base: []CaseResult{cr("b", "old", StatusPass, "", nil)}, run: []CaseResult{cr("b", "new", StatusFail, "", nil)},
			kinds: []ChangeKind{ChangeNewCase, ChangeGoneCase}},
		{name: "board added and removed", base: []CaseResult{cr("b1", "c", StatusPass, "", nil)}, run: []CaseResult{cr("b2", "c", StatusPass, "", nil)},
			kinds: []ChangeKind{ChangeNewBoard, ChangeGoneBoard}},
		{name: "now skipped", base: []CaseResult{cr("b", "c", StatusPass, "", nil)}, run: []CaseResult{cr("b", "c", StatusSkip, "no cap", nil)},
			kinds: []ChangeKind{ChangeNewSkip}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff(reportOf("1.0", tt.base...), reportOf("1.0", tt.run...))
			var kinds []ChangeKind
			for _, c := range d.Changes {
				kinds = append(kinds, c.Kind)
			}
			assert.Equal(t, tt.kinds, kinds)
			assert.Equal(t, tt.regression, d.HasRegression())
			var buf bytes.Buffer
			d.Write(&buf)
			if len(tt.kinds) == 0 {
				assert.Equal(t, "no differences\n", buf.String())
			} else {
				assert.Contains(t, buf.String(), string(tt.kinds[0]))
			}
		})
	}
}

func TestDiffFirmwareChangeAndOptional(t *testing.T) {
	base := reportOf("1.0", cr("b", "c", StatusPass, "", nil), cr("b", "opt", StatusPass, "", nil))
	run := reportOf("1.1", cr("b", "c", StatusPass, "", nil), cr("b", "opt", StatusFail, "slow", nil))
	run.Boards[0].Cases[1].Optional = true
	d := Diff(base, run)
	require.Len(t, d.Boards, 1)
	assert.Equal(t, BoardChange{Board: "b", Field: "firmware_version", Before: "1.0", After: "1.1"}, d.Boards[0])
	assert.True(t, d.HasRegression())
	assert.Empty(t, d.Regressions(true), "an optional case's regression does not count for the gate")
	var buf bytes.Buffer
	d.Write(&buf)
	assert.Contains(t, buf.String(), `board b: firmware_version "1.0" -> "1.1"`)
	assert.Contains(t, buf.String(), "(optional)")
}
