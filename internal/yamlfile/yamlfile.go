// Package yamlfile reports problems in YAML input files at their lines.
//
// A parser records each problem on a Collector, by node or by line, and
// gets them back as one error, each as "file:line: message".
package yamlfile

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in an input file, at a line of it.
type Error struct {
	File string
	Line int // 0 when the problem has no line
	Msg  string
}

// Error returns "file:line: msg", or "file: msg" when Line is 0 or less.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Collector records the problems found in one file, as *Error values.
// The zero value with File set is ready to use.
type Collector struct {
	File string
	errs []*Error
}

// Errorf records a problem at the line of n; at no line when n is nil.
func (c *Collector) Errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.Linef(line, format, args...)
}

// Linef records a problem at line (0 for none).
func (c *Collector) Linef(line int, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.File, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Len returns the number of problems recorded.
func (c *Collector) Len() int { return len(c.errs) }

// SortByLine orders the problems by line, keeping the order in which they
// were recorded among those at the same line.
func (c *Collector) SortByLine() {
	sort.SliceStable(c.errs, func(i, j int) bool {
		return c.errs[i].Line < c.errs[j].Line
	})
}

// Err returns the problems joined with errors.Join, in the order recorded
// (or sorted by SortByLine), or nil when there are none.
func (c *Collector) Err() error {
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Fields returns the values of the mapping n by key. It reports, at their
// lines, a key not in known ("what: unknown field "k" (known: a, b)") and a
// key given more than once ("what: field "k" given twice"), keeping the
// first. When n is not a mapping it reports "what: want a mapping" and
// returns an empty map.
func (c *Collector) Fields(n *yaml.Node, what string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		c.Errorf(n, "%s: want a mapping", what)
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			c.Errorf(k, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			c.Errorf(k, "%s: field %q given twice", what, k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out
}
