package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Suite is one run's results: a JUnit testsuite.
type Suite struct {
	Name      string
	Timestamp time.Time // when the run started
	Hostname  string
	Cases     []Case
}

// Case is one test's result, or one failure that is not a test's.
type Case struct {
	Name      string
	Classname string // the suite or stage it belongs to
	Time      time.Duration
	File      string // where it is written, if known
	Line      int
	// At most one of Failure, Error and Skipped is set; none when it
	// passed.
	Failure string // the test failed: why, in a line
	Error   string // not a test, but something the run needed failed: why, in a line
	Skipped string // it never ended: why
	Text    string // the body of the failure or error: the end of the output
	Output  string // its stdout
	Stderr  string // its stderr
	Cached  bool   // it passed before and did not run again
}

// Writing follows the schema Jenkins' xUnit plugin validates with
// (junit-10.xsd), which GitLab reads too: a testcase holds no properties,
// so the cached cases are named by properties of the testsuite.
type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name       string         `xml:"name,attr"`
	Tests      int            `xml:"tests,attr"`
	Failures   int            `xml:"failures,attr"`
	Errors     int            `xml:"errors,attr"`
	Skipped    int            `xml:"skipped,attr"`
	Time       string         `xml:"time,attr"`
	Timestamp  string         `xml:"timestamp,attr,omitempty"`
	Hostname   string         `xml:"hostname,attr,omitempty"`
	Properties *xmlProperties `xml:"properties,omitempty"`
	Cases      []xmlCase      `xml:"testcase"`
}

type xmlProperties struct {
	Properties []xmlProperty `xml:"property"`
}

type xmlProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type xmlCase struct {
	Name      string     `xml:"name,attr"`
	Classname string     `xml:"classname,attr"`
	Time      string     `xml:"time,attr"`
	File      string     `xml:"file,attr,omitempty"`
	Line      string     `xml:"line,attr,omitempty"`
	Skipped   *xmlResult `xml:"skipped,omitempty"`
	Error     *xmlResult `xml:"error,omitempty"`
	Failure   *xmlResult `xml:"failure,omitempty"`
	SystemOut string     `xml:"system-out,omitempty"`
	SystemErr string     `xml:"system-err,omitempty"`
}

type xmlResult struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// CachedProperty names, on the testsuite, each case that passed before
// and did not run again; its value is the case's classname.name.
const CachedProperty = "cached"

// cachedNote is the system-out of a cached case.
const cachedNote = "cached: this test passed before on the same filesystem and did not run again\n"

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Write writes s as a JUnit XML document of one testsuite.
func Write(w io.Writer, s Suite) error {
	x := xmlSuite{Name: s.Name, Tests: len(s.Cases), Hostname: s.Hostname}
	if !s.Timestamp.IsZero() {
		// ISO 8601 without a zone, as Ant writes it (junit-4.xsd's
		// pattern), in UTC.
		x.Timestamp = s.Timestamp.UTC().Format("2006-01-02T15:04:05")
	}
	var total time.Duration
	for _, c := range s.Cases {
		xc := xmlCase{Name: c.Name, Classname: c.Classname, Time: seconds(c.Time), File: c.File,
			SystemOut: c.Output, SystemErr: c.Stderr}
		if c.Line > 0 {
			xc.Line = strconv.Itoa(c.Line)
		}
		switch {
		case c.Failure != "":
			xc.Failure = &xmlResult{Message: c.Failure, Type: "failure", Text: c.Text}
			x.Failures++
		case c.Error != "":
			xc.Error = &xmlResult{Message: c.Error, Type: "error", Text: c.Text}
			x.Errors++
		case c.Skipped != "":
			xc.Skipped = &xmlResult{Message: c.Skipped}
			x.Skipped++
		}
		if c.Cached {
			if x.Properties == nil {
				x.Properties = &xmlProperties{}
			}
			x.Properties.Properties = append(x.Properties.Properties, xmlProperty{Name: CachedProperty, Value: c.Classname + "." + c.Name})
			xc.SystemOut = cachedNote + xc.SystemOut
		}
		total += c.Time
		x.Cases = append(x.Cases, xc)
	}
	x.Time = seconds(total)
	doc := xmlSuites{Tests: x.Tests, Failures: x.Failures, Errors: x.Errors, Time: x.Time, Suites: []xmlSuite{x}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
