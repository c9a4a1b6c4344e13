package junit

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestWrite writes suites to JUnit XML and compares them with the golden
// files in testdata; each also parses back with its counts.
func TestWrite(t *testing.T) {
	start := time.Date(2024, 5, 1, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		name                              string
		suite                             Suite
		failures, errors, skipped, cached int
	}{
		{"green", Suite{Name: "kiln", Timestamp: start, Hostname: "ci-1", Cases: []Case{
			{Name: "unit", Classname: "main", Time: 1500 * time.Millisecond, Output: "ok\n", Stderr: "a warning\n", File: "/src/kiln.yml", Line: 7},
			{Name: "smoke", Classname: "main", Cached: true},
		}}, 0, 0, 0, 1},
		{"failing test", Suite{Name: "kiln", Timestamp: start, Hostname: "ci-1", Cases: []Case{
			{Name: "unit", Classname: "main", Time: 250 * time.Millisecond, Failure: "kiln.yml:7:5: test \"unit\" failed: exit status 3", Text: "boom\x1b[0m\n", Output: "boom\n"},
			{Name: "smoke", Classname: "main", Time: time.Second},
		}}, 1, 0, 0, 0},
		{"failing step", Suite{Name: "kiln", Timestamp: start, Hostname: "ci-1", Cases: []Case{
			{Name: "run: make", Classname: "main", Time: 2 * time.Second, File: "/src/kiln.yml", Line: 4,
				Error: "/src/kiln.yml:4:5: step \"run: make\" failed: exit status 2", Text: "cc …\nerror: x\n", Output: "cc …\n", Stderr: "error: x\n"},
			{Name: "unit", Classname: "main", Skipped: "not run: the build failed: /src/kiln.yml:4:5: step \"run: make\" failed: exit status 2"},
		}}, 0, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tc.suite); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".xml")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("Write:\n%s\nwant (%s):\n%s", b.Bytes(), golden, want)
			}
			var doc xmlSuites
			if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatalf("not XML: %v\n%s", err, b.String())
			}
			s := doc.Suites[0]
			cached := 0
			if s.Properties != nil {
				cached = len(s.Properties.Properties)
			}
			if s.Tests != len(tc.suite.Cases) || s.Failures != tc.failures || s.Errors != tc.errors || s.Skipped != tc.skipped ||
				cached != tc.cached || doc.Failures != tc.failures || doc.Errors != tc.errors || s.Timestamp != "2024-05-01T10:30:00" || s.Hostname != "ci-1" {
				t.Errorf("parsed back: %+v", doc)
			}
		})
	}
}
