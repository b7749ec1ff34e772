// Package junitcheck checks a JUnit XML report the way CI dashboards read
// it: the attributes they require are present on <testsuites>, every
// <testsuite> and every <testcase>, failures and errors carry a message,
// and each count equals the elements it counts. Tests of the report
// writers use it.
package junitcheck

import (
	"encoding/xml"
	"errors"
	"fmt"
)

// Document is a JUnit report as parsed; a pointer is nil when its
// attribute is missing.
type Document struct {
	XMLName xml.Name `xml:"testsuites"`
	Totals
	Suites []Suite `xml:"testsuite"`
}

// Suite is one <testsuite>.
type Suite struct {
	Totals
	Cases []Case `xml:"testcase"`
}

// Totals are the attributes <testsuites> and each <testsuite> carry.
type Totals struct {
	Name     *string  `xml:"name,attr"`
	Tests    *int     `xml:"tests,attr"`
	Failures *int     `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Skipped  *int     `xml:"skipped,attr"`
	Time     *float64 `xml:"time,attr"`
}

// Case is one <testcase>; Failure, Error and Skipped are nil when absent.
type Case struct {
	Name      *string  `xml:"name,attr"`
	Classname *string  `xml:"classname,attr"`
	Time      *float64 `xml:"time,attr"`
	Failure   *Outcome `xml:"failure"`
	Error     *Outcome `xml:"error"`
	Skipped   *Outcome `xml:"skipped"`
}

// Outcome is a <failure>, <error> or <skipped> element.
type Outcome struct {
	Message *string `xml:"message,attr"`
	Body    string  `xml:",chardata"`
}

// Check parses data and returns the document, or the first way in which it
// falls short.
func Check(data []byte) (*Document, error) {
	var d Document
	if err := xml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	if err := d.Totals.check("testsuites"); err != nil {
		return nil, err
	}
	var total counts
	for i, s := range d.Suites {
		where := fmt.Sprintf("testsuite %d", i+1)
		if err := s.Totals.check(where); err != nil {
			return nil, err
		}
		where = fmt.Sprintf("testsuite %q", *s.Name)
		var got counts
		for j, c := range s.Cases {
			if err := c.check(fmt.Sprintf("%s testcase %d", where, j+1)); err != nil {
				return nil, err
			}
			got.add(c)
		}
		if err := got.match(where, s.Totals.counts()); err != nil {
			return nil, err
		}
		total.tests += got.tests
		total.failures += got.failures
		total.errors += got.errors
		total.skipped += got.skipped
	}
	if err := total.match("testsuites", d.Totals.counts()); err != nil {
		return nil, err
	}
	return &d, nil
}

func (c Case) check(where string) error {
	if c.Name == nil {
		return fmt.Errorf("junit: %s: no name attribute", where)
	}
	where = fmt.Sprintf("%s (%s)", where, *c.Name)
	if c.Classname == nil {
		return fmt.Errorf("junit: %s: no classname attribute", where)
	}
	if c.Time == nil {
		return fmt.Errorf("junit: %s: no time attribute", where)
	}
	if c.Failure != nil && c.Failure.Message == nil {
		return fmt.Errorf("junit: %s: failure without a message", where)
	}
	if c.Error != nil && c.Error.Message == nil {
		return fmt.Errorf("junit: %s: error without a message", where)
	}
	return nil
}

type counts struct{ tests, failures, errors, skipped int }

func (n *counts) add(c Case) {
	n.tests++
	if c.Failure != nil {
		n.failures++
	}
	if c.Error != nil {
		n.errors++
	}
	if c.Skipped != nil {
		n.skipped++
	}
}

// match compares the counted elements with the declared counts.
func (n counts) match(where string, declared counts) error {
	var errs []error
	for _, c := range []struct {
		attr           string
		found, claimed int
	}{
		{"tests", n.tests, declared.tests},
		{"failures", n.failures, declared.failures},
		{"errors", n.errors, declared.errors},
		{"skipped", n.skipped, declared.skipped},
	} {
		if c.found != c.claimed {
			errs = append(errs, fmt.Errorf("junit: %s: %s=%d, but %d found", where, c.attr, c.claimed, c.found))
		}
	}
	return errors.Join(errs...)
}

// check reports the first missing attribute.
func (t Totals) check(where string) error {
	for _, a := range []struct {
		attr    string
		present bool
	}{
		{"name", t.Name != nil}, {"tests", t.Tests != nil}, {"failures", t.Failures != nil},
		{"errors", t.Errors != nil}, {"skipped", t.Skipped != nil}, {"time", t.Time != nil},
	} {
		if !a.present {
			return fmt.Errorf("junit: %s: no %s attribute", where, a.attr)
		}
	}
	return nil
}

// counts are the declared counts; check first.
func (t Totals) counts() counts {
	return counts{*t.Tests, *t.Failures, *t.Errors, *t.Skipped}
}
