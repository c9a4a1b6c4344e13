package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// junitparserScript prints what python3-junitparser reads of a report:
// the suite's counts and attributes, and each case with its result,
// system-out and system-err.
const junitparserScript = `
import json, sys
from junitparser import JUnitXml, TestSuite, Error, Failure, Skipped, Properties
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = []
for s in suites:
    props = {}
    p = s.child(Properties)
    if p is not None:
        for q in p:
            props.setdefault(q.name, []).append(q.value)
    cases = []
    for c in s:
        r = c.result[0] if isinstance(c.result, list) and c.result else c.result
        kind = {Error: "error", Failure: "failure", Skipped: "skipped"}.get(type(r), "passed")
        cases.append({"name": c.name, "classname": c.classname, "time": c.time, "result": kind,
            "message": getattr(r, "message", None) or "", "text": getattr(r, "text", None) or "",
            "file": c._elem.get("file") or "", "line": c._elem.get("line") or "",
            "out": c.system_out or "", "err": c.system_err or ""})
    out.append({"name": s.name, "tests": s.tests, "failures": s.failures, "errors": s.errors,
        "skipped": s.skipped, "timestamp": s.timestamp or "", "hostname": s.hostname or "",
        "properties": props, "cases": cases})
print(json.dumps(out))
`

type parsedSuite struct {
	Name                             string
	Tests, Failures, Errors, Skipped int
	Timestamp, Hostname              string
	Properties                       map[string][]string
	Cases                            []struct {
		Name, Classname, Result, Message, Text, File, Line, Out, Err string
		Time                                                         float64
	}
}

// junitparser returns a python3 that has junitparser (Debian's package
// installs it for /usr/bin/python3, which may not be the python3 first
// on PATH), or skips the test.
func junitparser(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import junitparser").Run() == nil {
			return py
		}
		tried = append(tried, py)
	}
	t.Skipf("python3-junitparser is not installed (tried %v): apt-get install python3-junitparser", tried)
	return ""
}

// parseJUnit parses a report with python3-junitparser.
func parseJUnit(t *testing.T, py, path string) []parsedSuite {
	t.Helper()
	out, err := exec.Command(py, "-c", junitparserScript, path).CombinedOutput()
	if err != nil {
		t.Fatalf("junitparser could not read %s: %v\n%s", path, err, out)
	}
	var s []parsedSuite
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(s) != 1 {
		t.Fatalf("want one testsuite, junitparser read %d: %s", len(s), out)
	}
	return s
}

// junitBuild returns, for a JUnit test of a build of manifest: a python3
// with junitparser, a kiln root holding busybox, the build context and
// where to write the report.
func junitBuild(t *testing.T, manifest string) (py, root, dir, report string) {
	t.Helper()
	py = junitparser(t)
	root = buildRoot(t)
	dir = writeContext(t, map[string]string{"kiln.yml": manifest})
	return py, root, dir, filepath.Join(t.TempDir(), "report.xml")
}

// TestBuildJUnitStepFails builds a manifest whose step fails before its
// tests run: python3-junitparser reads an error case naming the step, its
// file:line and its output, and the tests skipped with the reason.
func TestBuildJUnitStepFails(t *testing.T) {
	py, root, dir, report := junitBuild(t, `from: busybox
steps:
  - run: echo ok > /ok
  - run: echo "step out"; echo "step err" >&2; exit 7
tests:
  - name: smoke
    run: test -f /ok
  - name: unit
    run: test -f /ok
`)
	r := kiln(t, root, nil, "build", "--progress", "plain", "--junit", report, dir)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	s := parseJUnit(t, py, report)[0]
	if s.Errors < 1 || s.Failures != 0 || s.Skipped != 2 || s.Tests != 3 {
		t.Errorf("suite counts: tests %d errors %d failures %d skipped %d, want 3 1 0 2", s.Tests, s.Errors, s.Failures, s.Skipped)
	}
	if s.Timestamp == "" || s.Hostname == "" {
		t.Errorf("suite timestamp %q, hostname %q: want both", s.Timestamp, s.Hostname)
	}
	var errCase, skipped int
	for _, c := range s.Cases {
		switch c.Result {
		case "error":
			errCase++
			step := `run: echo "step out"; echo "step err" >&2; exit 7` // as kiln names it everywhere
			if c.Name != step {
				t.Errorf("error case named %q, want the step %q", c.Name, step)
			}
			if !strings.HasSuffix(c.File, "kiln.yml") || c.Line != "4" || !strings.Contains(c.Message, "kiln.yml:4") || !strings.Contains(c.Message, "exit status 7") {
				t.Errorf("error case: file %q line %q message %q, want kiln.yml, 4 and both in the message with the exit status", c.File, c.Line, c.Message)
			}
			if !strings.Contains(c.Text, "step out") || !strings.Contains(c.Out, "step out") || strings.Contains(c.Out, "step err") || !strings.Contains(c.Err, "step err") {
				t.Errorf("error case: text %q, system-out %q, system-err %q: want the output in the error, stdout in system-out, stderr in system-err", c.Text, c.Out, c.Err)
			}
		case "skipped":
			skipped++
			if !strings.Contains(c.Message, "not run") || !strings.Contains(c.Message, "exit status 7") {
				t.Errorf("skipped case %s: message %q, want why it did not run", c.Name, c.Message)
			}
		default:
			t.Errorf("case %s: %s, want error or skipped", c.Name, c.Result)
		}
	}
	if errCase != 1 || skipped != 2 {
		t.Errorf("%d error and %d skipped cases, want 1 and 2: %+v", errCase, skipped, s.Cases)
	}
}

// TestBuildJUnitGreen builds a manifest with two passing tests: two
// passed cases, stderr in system-err; built again, the cached tests are
// marked as cached.
func TestBuildJUnitGreen(t *testing.T) {
	py, root, dir, report := junitBuild(t, `from: busybox
steps:
  - run: echo ok > /ok
tests:
  - name: smoke
    run: echo out; echo warn >&2; test -f /ok
  - name: unit
    run: test -f /ok
`)
	mustKiln(t, root, "build", "--progress", "plain", "--junit", report, dir)
	s := parseJUnit(t, py, report)[0]
	if s.Tests != 2 || s.Errors != 0 || s.Failures != 0 || s.Skipped != 0 || len(s.Cases) != 2 {
		t.Fatalf("suite: %+v, want 2 passed", s)
	}
	for _, c := range s.Cases {
		if c.Result != "passed" {
			t.Errorf("case %s: %s", c.Name, c.Result)
		}
		if c.Name == "smoke" && (!strings.Contains(c.Out, "out") || strings.Contains(c.Out, "warn") || !strings.Contains(c.Err, "warn")) {
			t.Errorf("smoke: system-out %q, system-err %q: want stdout and stderr apart", c.Out, c.Err)
		}
	}
	if len(s.Properties["cached"]) != 0 {
		t.Errorf("tests that ran are marked cached: %v", s.Properties)
	}

	mustKiln(t, root, "build", "--progress", "plain", "--junit", report, dir)
	s = parseJUnit(t, py, report)[0]
	if s.Tests != 2 || s.Errors != 0 || s.Failures != 0 || s.Skipped != 0 {
		t.Errorf("cached suite: %+v, want 2 passed", s)
	}
	got := strings.Join(s.Properties["cached"], ",")
	if got != "main.smoke,main.unit" && got != "main.unit,main.smoke" {
		t.Errorf("cached property values %q, want main.smoke and main.unit", got)
	}
}

// TestBuildJUnitServiceNeverReady: a service that never gets ready is
// an error case of the report, named after it, at its file:line, with
// its last log lines; the test that needed it is skipped, saying why.
func TestBuildJUnitServiceNeverReady(t *testing.T) {
	enginetest.RequireRoot(t)
	py, root, dir, report := junitBuild(t, neverReadyManifest)
	r := kiln(t, root, nil, "build", "--progress", "plain", "--junit", report, dir)
	if r.code == 0 {
		t.Fatal("the build passed")
	}
	s := parseJUnit(t, py, report)[0]
	if s.Errors != 1 || s.Skipped != 1 || s.Failures != 0 {
		t.Errorf("suite counts: errors %d skipped %d failures %d, want 1 1 0", s.Errors, s.Skipped, s.Failures)
	}
	var seen bool
	for _, c := range s.Cases {
		switch c.Result {
		case "error":
			seen = true
			if !strings.Contains(c.Name, "service: db") || !strings.HasSuffix(c.File, "kiln.yml") || c.Line != "3" {
				t.Errorf("error case %q at %s:%s, want the service db at kiln.yml:3", c.Name, c.File, c.Line)
			}
			if !strings.Contains(c.Message, "never got ready within 1s") {
				t.Errorf("error case message %q does not say it never got ready", c.Message)
			}
			if !strings.Contains(c.Text, "db starting") || !strings.Contains(c.Text, "db: bad config") {
				t.Errorf("error case text %q does not hold the service's last lines", c.Text)
			}
		case "skipped":
			if c.Name != "query" || !strings.Contains(c.Message, "not run") {
				t.Errorf("skipped case %q: %q, want query, not run", c.Name, c.Message)
			}
		}
	}
	if !seen {
		t.Errorf("no error case for the service: %+v", s.Cases)
	}
}
