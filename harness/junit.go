package harness

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
)

// JUnit XML, in the shape CI dashboards read (Jenkins, GitLab, GitHub
// actions reporters): <testsuites> with one <testsuite> per board and one
// <testcase> per case; <failure>, <error> and <skipped> children carry a
// message attribute and a body with the details and the device output.

// JUnitTestSuites is the root element.
type JUnitTestSuites struct {
	XMLName  xml.Name         `xml:"testsuites"`
	Name     string           `xml:"name,attr"`
	Tests    int              `xml:"tests,attr"`
	Failures int              `xml:"failures,attr"`
	Errors   int              `xml:"errors,attr"`
	Skipped  int              `xml:"skipped,attr"`
	Time     string           `xml:"time,attr"`
	Suites   []JUnitTestSuite `xml:"testsuite"`
}

// JUnitTestSuite is one board.
type JUnitTestSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Hostname   string          `xml:"hostname,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	Cases      []JUnitTestCase `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

// JUnitProperty is a name/value pair of a suite (firmware, revision, ...).
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitTestCase is one case.
type JUnitTestCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *JUnitMessage `xml:"failure,omitempty"`
	Error     *JUnitMessage `xml:"error,omitempty"`
	Skipped   *JUnitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

// JUnitMessage is a failure, error or skipped element.
type JUnitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",chardata"`
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

// JUnit converts the report.
func (r *Report) JUnit() *JUnitTestSuites {
	root := &JUnitTestSuites{Name: "hiltest", Time: seconds(r.DurationMS)}
	for _, b := range r.Boards {
		s := JUnitTestSuite{Name: b.Name, Time: seconds(b.DurationMS)}
		if !b.startedTime.IsZero() {
			s.Timestamp = b.startedTime.UTC().Format("2006-01-02T15:04:05")
		}
		s.Properties = boardProperties(b)
		var setup []string
		if b.Flash != nil {
			setup = append(setup, "flash: "+b.Flash.Command, b.Flash.Output)
		}
		if b.SetupError != "" {
			setup = append(setup, "setup error: "+b.SetupError)
		}
		s.SystemOut = strings.Join(setup, "\n")
		if b.SetupError != "" && len(b.Cases) == 0 {
			s.Cases = append(s.Cases, JUnitTestCase{Name: "setup", Classname: b.Name, Time: "0.000",
				Error: &JUnitMessage{Message: b.SetupError, Type: "setup", Body: b.SetupError}})
			s.Tests++
			s.Errors++
		}
		for _, c := range b.Cases {
			tc := JUnitTestCase{Name: c.ID, Classname: b.Name + "." + classOf(c.ID), Time: seconds(c.DurationMS)}
			body := caseBody(c)
			switch c.Status {
			case StatusFail:
				tc.Failure = &JUnitMessage{Message: c.Message, Type: "fail", Body: body}
				s.Failures++
			case StatusError:
				tc.Error = &JUnitMessage{Message: c.Message, Type: "error", Body: body}
				s.Errors++
			case StatusSkip:
				tc.Skipped = &JUnitMessage{Message: c.Message}
				s.Skipped++
			default:
				tc.SystemOut = body
			}
			s.Tests++
			s.Cases = append(s.Cases, tc)
		}
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Errors += s.Errors
		root.Skipped += s.Skipped
		root.Suites = append(root.Suites, s)
	}
	return root
}

func classOf(id string) string {
	if i := strings.LastIndexByte(id, '/'); i > 0 {
		return strings.ReplaceAll(id[:i], "/", ".")
	}
	return "cases"
}

func boardProperties(b BoardReport) []JUnitProperty {
	var ps []JUnitProperty
	add := func(k, v string) {
		if v != "" {
			ps = append(ps, JUnitProperty{Name: k, Value: v})
		}
	}
	add("profile", b.Declared.Profile)
	add("port", b.Declared.Port)
	add("declared.firmware", b.Declared.Firmware)
	add("declared.firmware_version", b.Declared.FirmwareVersion)
	add("declared.revision", b.Declared.Revision)
	add("declared.dialect", b.Declared.Dialect)
	add("labels", strings.Join(b.Declared.Labels, ","))
	add("sim", b.Declared.Sim)
	if i := b.Info; i != nil {
		add("firmware", i.Firmware)
		add("firmware_version", i.FirmwareVersion)
		add("board", i.Board)
		add("chip", i.Chip)
		add("mac", i.MAC)
		add("dialect", i.Dialect)
		add("caps", strings.Join(i.Caps, ","))
	}
	return ps
}

// caseBody is the text of a failure, error or passing case: failures with
// their divergence views and diagnoses, logs, outputs, and device output.
func caseBody(c CaseResult) string {
	var b strings.Builder
	for _, f := range c.Failures {
		b.WriteString(f.Message + "\n")
		if f.Diagnosis != "" {
			b.WriteString("diagnosis: " + f.Diagnosis + "\n")
		}
		if f.Divergence != nil {
			b.WriteString(f.Divergence.View + "\n")
		}
	}
	if len(c.Logs) > 0 {
		b.WriteString("log:\n")
		for _, l := range c.Logs {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(c.Outputs) > 0 {
		b.WriteString("outputs:\n")
		for _, k := range sortedKeys(c.Outputs) {
			b.WriteString("  " + k + ": " + c.Outputs[k] + "\n")
		}
	}
	if len(c.DeviceOutput) > 0 {
		b.WriteString("device output:\n")
		for _, l := range c.DeviceOutput {
			b.WriteString("  " + l + "\n")
		}
	}
	return xmlSafe(b.String())
}

// xmlSafe drops characters XML 1.0 cannot carry (control bytes from a
// board printing garbage).
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

// WriteJUnit writes the report as JUnit XML.
func (r *Report) WriteJUnit(w io.Writer) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(r.JUnit()); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}

// WriteJUnitFile writes the JUnit XML to path.
func (r *Report) WriteJUnitFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	if err := r.WriteJUnit(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write junit: %w", err)
	}
	return nil
}
