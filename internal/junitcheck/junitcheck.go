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
	XMLName  xml.Name `xml:"testsuites"`
	Name     *string  `xml:"name,attr"`
	Tests    *int     `xml:"tests,attr"`
	Failures *int     `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Skipped  *int     `xml:"skipped,attr"`
	Time     *float64 `xml:"time,attr"`
	Suites   []Suite  `xml:"testsuite"`
}

// Suite is one <testsuite>.
type Suite struct {
	Name     *string  `xml:"name,attr"`
	Tests    *int     `xml:"tests,attr"`
	Failures *int     `xml:"failures,attr"`
	Errors   *int     `xml:"errors,attr"`
	Skipped  *int     `xml:"skipped,attr"`
	Time     *float64 `xml:"time,attr"`
	Cases    []Case   `xml:"testcase"`
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
	if err := required("testsuites", d.Name, d.Tests, d.Failures, d.Errors, d.Skipped, d.Time); err != nil {
		return nil, err
	}
	var total counts
	for i, s := range d.Suites {
		where := fmt.Sprintf("testsuite %d", i+1)
		if err := required(where, s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, s.Time); err != nil {
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
		if err := got.match(where, counts{*s.Tests, *s.Failures, *s.Errors, *s.Skipped}); err != nil {
			return nil, err
		}
		total.tests += got.tests
		total.failures += got.failures
		total.errors += got.errors
		total.skipped += got.skipped
	}
	if err := total.match("testsuites", counts{*d.Tests, *d.Failures, *d.Errors, *d.Skipped}); err != nil {
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

// required reports the first missing attribute of the six every
// <testsuites> and <testsuite> carries: name, tests, failures, errors,
// skipped, time.
func required(where string, name *string, tests, failures, errs, skipped *int, time *float64) error {
	for _, a := range []struct {
		attr    string
		present bool
	}{
		{"name", name != nil}, {"tests", tests != nil}, {"failures", failures != nil},
		{"errors", errs != nil}, {"skipped", skipped != nil}, {"time", time != nil},
	} {
		if !a.present {
			return fmt.Errorf("junit: %s: no %s attribute", where, a.attr)
		}
	}
	return nil
}
