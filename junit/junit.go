package junit

import (
	"encoding/xml"
	"fmt"
	"io"
	"time"
)

// Case is one test's result.
type Case struct {
	Name      string
	Classname string // the suite or stage it belongs to
	Time      time.Duration
	Failure   string // the failure message; "" when it passed
	Output    string // what it printed (the end of it)
	Skipped   bool
}

type xmlSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Tests   int        `xml:"tests,attr"`
	Fails   int        `xml:"failures,attr"`
	Time    string     `xml:"time,attr"`
	Suites  []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name    string    `xml:"name,attr"`
	Tests   int       `xml:"tests,attr"`
	Fails   int       `xml:"failures,attr"`
	Skipped int       `xml:"skipped,attr"`
	Time    string    `xml:"time,attr"`
	Cases   []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	Name      string      `xml:"name,attr"`
	Classname string      `xml:"classname,attr"`
	Time      string      `xml:"time,attr"`
	Failure   *xmlFailure `xml:"failure,omitempty"`
	Skipped   *struct{}   `xml:"skipped,omitempty"`
	SystemOut string      `xml:"system-out,omitempty"`
}

type xmlFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Write writes cases as one JUnit suite called name.
func Write(w io.Writer, name string, cases []Case) error {
	s := xmlSuite{Name: name, Tests: len(cases)}
	var total time.Duration
	for _, c := range cases {
		x := xmlCase{Name: c.Name, Classname: c.Classname, Time: seconds(c.Time), SystemOut: c.Output}
		if c.Failure != "" {
			x.Failure = &xmlFailure{Message: c.Failure, Text: c.Output}
			s.Fails++
		}
		if c.Skipped {
			x.Skipped = &struct{}{}
			s.Skipped++
		}
		total += c.Time
		s.Cases = append(s.Cases, x)
	}
	s.Time = seconds(total)
	doc := xmlSuites{Tests: s.Tests, Fails: s.Fails, Time: s.Time, Suites: []xmlSuite{s}}
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
