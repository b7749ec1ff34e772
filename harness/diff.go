package harness

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ChangeKind classifies a difference between two runs of a case.
type ChangeKind string

// Kinds of change between a base run and a new run.
const (
	ChangeRegression ChangeKind = "regression"      // passed (or skipped) before, fails or errors now
	ChangeFixed      ChangeKind = "fixed"           // failed or errored before, passes now
	ChangeStillFails ChangeKind = "still-failing"   // failed before and now, possibly differently
	ChangeOutputs    ChangeKind = "changed-outputs" // same status, different outputs
	ChangeNewCase    ChangeKind = "new-case"        // not in the base run
	ChangeGoneCase   ChangeKind = "removed-case"    // in the base run only
	ChangeNewSkip    ChangeKind = "now-skipped"     // ran before, skipped now
	ChangeUnskipped  ChangeKind = "now-runs"        // skipped before, passes now
	ChangeNewBoard   ChangeKind = "new-board"
	ChangeGoneBoard  ChangeKind = "removed-board"
)

// CaseChange is one difference.
type CaseChange struct {
	Board    string      `json:"board"`
	Case     string      `json:"case,omitempty"`
	Kind     ChangeKind  `json:"kind"`
	Optional bool        `json:"optional,omitempty"`
	Before   Status      `json:"before,omitempty"`
	After    Status      `json:"after,omitempty"`
	Detail   string      `json:"detail,omitempty"`
	Outputs  []OutputDif `json:"outputs,omitempty"`
}

// OutputDif is one output that changed.
type OutputDif struct {
	Key    string `json:"key"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// BoardChange says how a board's identity changed between the runs
// (firmware, version, revision, dialect).
type BoardChange struct {
	Board  string `json:"board"`
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// DiffResult compares two reports.
type DiffResult struct {
	Boards  []BoardChange `json:"boards,omitempty"`
	Changes []CaseChange  `json:"changes"`
}

// Regressions returns the regressions; required ones only when
// requiredOnly is set.
func (d *DiffResult) Regressions(requiredOnly bool) []CaseChange {
	var out []CaseChange
	for _, c := range d.Changes {
		if c.Kind == ChangeRegression && (!requiredOnly || !c.Optional) {
			out = append(out, c)
		}
	}
	return out
}

// HasRegression reports whether any case regressed.
func (d *DiffResult) HasRegression() bool { return len(d.Regressions(false)) > 0 }

func failed(s Status) bool { return s == StatusFail || s == StatusError }

// Diff compares a new run with a base run, board by board (by name) and
// case by case (by ID).
func Diff(base, run *Report) *DiffResult {
	d := &DiffResult{}
	for _, nb := range run.Boards {
		bb := base.Board(nb.Name)
		if bb == nil {
			d.Changes = append(d.Changes, CaseChange{Board: nb.Name, Kind: ChangeNewBoard})
			continue
		}
		d.Boards = append(d.Boards, boardChanges(*bb, nb)...)
		for _, nc := range nb.Cases {
			bc := base.Case(nb.Name, nc.ID)
			if bc == nil {
				d.Changes = append(d.Changes, CaseChange{Board: nb.Name, Case: nc.ID, Kind: ChangeNewCase, Optional: nc.Optional, After: nc.Status, Detail: nc.Message})
				continue
			}
			ch := CaseChange{Board: nb.Name, Case: nc.ID, Optional: nc.Optional, Before: bc.Status, After: nc.Status}
			switch {
			case !failed(bc.Status) && failed(nc.Status):
				ch.Kind = ChangeRegression
				ch.Detail = nc.Message
			case failed(bc.Status) && nc.Status == StatusPass:
				ch.Kind = ChangeFixed
				ch.Detail = "was: " + bc.Message
			case failed(bc.Status) && failed(nc.Status):
				if bc.Message == nc.Message {
					continue
				}
				ch.Kind = ChangeStillFails
				ch.Detail = fmt.Sprintf("was: %s; now: %s", bc.Message, nc.Message)
			case bc.Status != StatusSkip && nc.Status == StatusSkip:
				ch.Kind = ChangeNewSkip
				ch.Detail = nc.Message
			case bc.Status == StatusSkip && nc.Status == StatusPass:
				ch.Kind = ChangeUnskipped
			default:
				ch.Outputs = outputDiffs(bc.Outputs, nc.Outputs)
				if len(ch.Outputs) == 0 {
					continue
				}
				ch.Kind = ChangeOutputs
			}
			if ch.Kind != ChangeOutputs {
				ch.Outputs = outputDiffs(bc.Outputs, nc.Outputs)
			}
			d.Changes = append(d.Changes, ch)
		}
		for _, bc := range bb.Cases {
			if run.Case(nb.Name, bc.ID) == nil {
				d.Changes = append(d.Changes, CaseChange{Board: nb.Name, Case: bc.ID, Kind: ChangeGoneCase, Optional: bc.Optional, Before: bc.Status})
			}
		}
	}
	for _, bb := range base.Boards {
		if run.Board(bb.Name) == nil {
			d.Changes = append(d.Changes, CaseChange{Board: bb.Name, Kind: ChangeGoneBoard})
		}
	}
	return d
}

func boardChanges(a, b BoardReport) []BoardChange {
	var out []BoardChange
	add := func(field, x, y string) {
		if x != y {
			out = append(out, BoardChange{Board: b.Name, Field: field, Before: x, After: y})
		}
	}
	var ai, bi BoardInfo
	if a.Info != nil {
		ai = *a.Info
	}
	if b.Info != nil {
		bi = *b.Info
	}
	add("firmware", ai.Firmware, bi.Firmware)
	add("firmware_version", ai.FirmwareVersion, bi.FirmwareVersion)
	add("dialect", ai.Dialect, bi.Dialect)
	add("chip", ai.Chip, bi.Chip)
	add("declared.firmware", a.Declared.Firmware, b.Declared.Firmware)
	add("declared.firmware_version", a.Declared.FirmwareVersion, b.Declared.FirmwareVersion)
	add("declared.revision", a.Declared.Revision, b.Declared.Revision)
	return out
}

func outputDiffs(a, b map[string]string) []OutputDif {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []OutputDif
	for k := range keys {
		if a[k] != b[k] {
			out = append(out, OutputDif{Key: k, Before: a[k], After: b[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Write prints the differences for humans.
func (d *DiffResult) Write(w io.Writer) {
	for _, b := range d.Boards {
		fmt.Fprintf(w, "board %s: %s %q -> %q\n", b.Board, b.Field, b.Before, b.After)
	}
	order := []ChangeKind{ChangeRegression, ChangeFixed, ChangeStillFails, ChangeOutputs, ChangeNewSkip, ChangeUnskipped, ChangeNewCase, ChangeGoneCase, ChangeNewBoard, ChangeGoneBoard}
	for _, k := range order {
		var cs []CaseChange
		for _, c := range d.Changes {
			if c.Kind == k {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s (%d):\n", k, len(cs))
		for _, c := range cs {
			line := "  " + c.Board
			if c.Case != "" {
				line += " " + c.Case
			}
			if c.Before != "" || c.After != "" {
				line += fmt.Sprintf(" [%s -> %s]", orDash(c.Before), orDash(c.After))
			}
			if c.Optional {
				line += " (optional)"
			}
			if c.Detail != "" {
				line += ": " + strings.ReplaceAll(c.Detail, "\n", " ")
			}
			fmt.Fprintln(w, line)
			for _, o := range c.Outputs {
				fmt.Fprintf(w, "      %s: %q -> %q\n", o.Key, o.Before, o.After)
			}
		}
	}
	if len(d.Boards) == 0 && len(d.Changes) == 0 {
		fmt.Fprintln(w, "no differences")
	}
}

func orDash(s Status) string {
	if s == "" {
		return "-"
	}
	return string(s)
}
