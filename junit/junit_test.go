package junit

import (
	"bytes"
	"encoding/xml"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, "kiln", []Case{
		{Name: "unit", Classname: "main", Time: 1500 * time.Millisecond, Output: "ok\n"},
		{Name: "smoke", Classname: "main", Time: 250 * time.Millisecond, Failure: "exit status 3", Output: "boom"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc xmlSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	s := doc.Suites[0]
	if doc.Tests != 2 || doc.Fails != 1 || s.Time != "1.750" || s.Cases[0].Time != "1.500" ||
		s.Cases[0].Failure != nil || s.Cases[1].Failure == nil || s.Cases[1].Failure.Message != "exit status 3" {
		t.Errorf("parsed back: %+v", doc)
	}
}
