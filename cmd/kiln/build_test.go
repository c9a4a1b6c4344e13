package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// End-to-end tests of kiln build: the acceptance list of the build issue,
// run through the command line as a user would.

// buildRoot returns a fresh kiln root holding busybox:latest (cmd
// /bin/sh), for a build test that needs root.
func buildRoot(t *testing.T) string {
	t.Helper()
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	return root
}

// writeContext writes files (path → content) into a new build context
// directory and returns it.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// jsonBuild is what `kiln build --progress json` printed.
type jsonBuild struct {
	final  map[string]string // node → its last state
	names  map[string]string // node → its name
	digest string            // from the closing result object
}

// parseJSONBuild reads the JSON lines of a build's stdout.
func parseJSONBuild(t *testing.T, stdout string) jsonBuild {
	t.Helper()
	b := jsonBuild{final: map[string]string{}, names: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Type, Node, Name, State, Digest string
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--progress json printed a line that is not JSON: %q: %v", sc.Text(), err)
		}
		switch e.Type {
		case "state":
			b.final[e.Node] = e.State
			b.names[e.Node] = e.Name
		case "result":
			b.digest = e.Digest
		case "output":
		default:
			t.Errorf("--progress json printed an object of unknown type %q", e.Type)
		}
	}
	if !strings.HasPrefix(b.digest, "sha256:") {
		t.Fatalf("--progress json printed no result digest:\n%s", stdout)
	}
	return b
}

// digestOf returns the digest a plain build printed on stdout.
func digestOf(t *testing.T, r result) string {
	t.Helper()
	d := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("kiln build printed %q on stdout, want one digest", r.stdout)
	}
	return d
}

// countFiles counts the regular files under dir (0 when it is missing).
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// designTravis is the travis-style manifest of the design, verbatim.
const designTravis = `language: python
install:
  {% for pkg in dependencies %}
  - pip install {{ pkg }}
  {% endfor %}
script:
  - pylint {{ project }} tests/
  - nosetests --with-coverage --cover-package {{ project }}
`

// fakePython adds to a busybox root filesystem shell stand-ins for pip
// (it records what it installs), pylint and nosetests (they pass when
// the package they check was installed), so the design's manifest builds
// offline as written.
func fakePython(t *testing.T, dir string) {
	t.Helper()
	scripts := map[string]string{
		"pip":       "#!/bin/sh\n[ \"$1\" = install ] || exit 2\necho \"$2\" >> /var/lib/pip-installed\n",
		"pylint":    "#!/bin/sh\ngrep -qx \"$1\" /var/lib/pip-installed || { echo \"pylint: no package $1\"; exit 1; }\n",
		"nosetests": "#!/bin/sh\nfor p; do pkg=$p; done\ngrep -qx \"$pkg\" /var/lib/pip-installed || { echo \"nosetests: no package $pkg\"; exit 1; }\n",
	}
	for name, s := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "usr", "bin", name), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "var", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestBuildTravis builds the travis-style manifests (the example, and the
// design's text unchanged) with --set values: install lines are steps,
// script lines tests, and a wrong value fails a test.
func TestBuildTravis(t *testing.T) {
	root := buildRoot(t)
	py := enginetest.Busybox(t)
	if err := os.MkdirAll(filepath.Join(py, "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fakePython(t, py)
	mustKiln(t, root, "import", py, "-t", "python", "--cmd", "/bin/sh")
	design := writeContext(t, map[string]string{"kiln.yml": designTravis})

	tests := []struct {
		name       string
		context    string
		set        []string
		wantFailed string            // the test that must fail, if any
		wantStates map[string]string // node name → final state
	}{
		{
			name: "example", context: "../../examples/travis",
			set: []string{"project=demo", "dependencies=[curl, jq]"},
			wantStates: map[string]string{
				"from: busybox": "cached", "run: echo installing curl >> /installed": "done",
				"run: echo installing jq >> /installed": "done", "test: script-1": "passed", "test: script-2": "passed",
			},
		},
		{
			name: "example wrong project", context: "../../examples/travis",
			set: []string{"project=other", "dependencies=[curl, jq]"}, wantFailed: "script-2",
		},
		{
			name: "example missing dependency", context: "../../examples/travis",
			set: []string{"project=demo", "dependencies=[jq]"}, wantFailed: "script-1",
		},
		{
			name: "design", context: design,
			set: []string{"project=demo", "dependencies=[demo, jq]"},
			wantStates: map[string]string{
				"from: python": "cached", "run: pip install demo": "done", "run: pip install jq": "done",
				"test: script-1": "passed", "test: script-2": "passed",
			},
		},
		{
			name: "design wrong project", context: design,
			set: []string{"project=nosuch", "dependencies=[demo, jq]"}, wantFailed: "script-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"build", "--progress", "json"}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			r := kiln(t, root, nil, append(args, tt.context)...)
			if tt.wantFailed != "" {
				if r.code == 0 {
					t.Fatalf("the build passed; want test %s to fail", tt.wantFailed)
				}
				if !strings.Contains(r.stderr, `test "`+tt.wantFailed+`" failed`) {
					t.Errorf("stderr %q does not say test %s failed", r.stderr, tt.wantFailed)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			b := parseJSONBuild(t, r.stdout)
			got := map[string]string{}
			for node, st := range b.final {
				got[b.names[node]] = st
			}
			if diff := cmp.Diff(tt.wantStates, got); diff != "" {
				t.Errorf("final states (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildRebuildCached rebuilds with nothing changed (every node
// cached, the same digest), then with one copied file changed: that copy
// and what follows it run, what precedes it stays cached.
func TestBuildRebuildCached(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"a.txt": "first\n",
		"b.txt": "second\n",
		"kiln.yml": `from: busybox
steps:
  - run: echo one > /one
  - copy: {src: a.txt, dst: /a.txt}
  - run: cat /a.txt > /a.copy
  - copy: {src: b.txt, dst: /b.txt}
  - run: cat /a.copy /b.txt > /all
tests:
  - name: has-all
    run: grep -q second /all
`,
	})
	first := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", dir).stdout)
	if len(first.final) != 7 {
		t.Fatalf("first build: %d nodes, want 7 (base, 5 steps, 1 test): %v", len(first.final), first.final)
	}
	for node, st := range first.final {
		if want := map[bool]string{true: "cached", false: "done"}[node == "main/base"]; node != "main/test/has-all" && st != want {
			t.Errorf("first build: %s (%s) ended %s, want %s", node, first.names[node], st, want)
		}
	}

	again := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", dir).stdout)
	for node, st := range again.final {
		if st != "cached" {
			t.Errorf("rebuild with nothing changed: %s (%s) ended %s, want cached", node, again.names[node], st)
		}
	}
	if len(again.final) != len(first.final) {
		t.Errorf("rebuild: %d nodes, want %d", len(again.final), len(first.final))
	}
	if again.digest != first.digest {
		t.Errorf("rebuild with nothing changed gave %s, want %s", again.digest, first.digest)
	}

	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("second, changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", dir).stdout)
	want := map[string]string{
		"main/base": "cached", "main/0": "cached", "main/1": "cached", "main/2": "cached",
		"main/3": "done", "main/4": "done", "main/test/has-all": "passed",
	}
	if diff := cmp.Diff(want, changed.final); diff != "" {
		t.Errorf("after changing b.txt, final states (-want +got):\n%s", diff)
	}
	if got := changed.names["main/3"]; got != "copy: b.txt -> /b.txt" {
		t.Errorf("node main/3 is %q, want the copy of b.txt", got)
	}
	if changed.digest == first.digest {
		t.Error("changing a copied file did not change the digest")
	}
}

// TestBuildParallelStages builds three independent stages whose steps
// each sleep 2 s, with the default --jobs: they run at once.
func TestBuildParallelStages(t *testing.T) {
	root := buildRoot(t)
	var m strings.Builder
	m.WriteString("stages:\n")
	for _, s := range []string{"a", "b", "c"} {
		m.WriteString("  " + s + ":\n    from: busybox\n    steps:\n      - run: sleep 2 && echo " + s + " > /" + s + "\n")
	}
	m.WriteString("  final:\n    from: busybox\n    steps:\n")
	for _, s := range []string{"a", "b", "c"} {
		m.WriteString("      - copy: {from: " + s + ", src: /" + s + ", dst: /out/}\n")
	}
	m.WriteString("    tests:\n      - name: all-three\n        run: test \"$(cat /out/a /out/b /out/c)\" = \"$(printf 'a\\nb\\nc')\"\n")
	dir := writeContext(t, map[string]string{"kiln.yml": m.String()})

	start := time.Now()
	mustKiln(t, root, "build", dir)
	took := time.Since(start)
	t.Logf("three 2 s stages took %v", took)
	if took < 2*time.Second {
		t.Errorf("the build took %v: the sleeps did not run", took)
	}
	// One after another they take at least 6 s; at once, 2 s and kiln's
	// overhead, which a loaded 2-core machine can stretch by seconds.
	if took >= 5500*time.Millisecond {
		t.Errorf("the build took %v, want < 5.5 s (three 2 s stages one after another take 6 s): the stages did not run at once", took)
	}
}

// junitReport is the part of a JUnit file the tests check.
type junitReport struct {
	Cases []struct {
		Name    string  `xml:"name,attr"`
		Time    float64 `xml:"time,attr"`
		Failure *struct {
			Message string `xml:"message,attr"`
			Text    string `xml:",chardata"`
		} `xml:"failure"`
	} `xml:"testsuite>testcase"`
}

// TestBuildFailingTest builds a manifest with a failing test: the build
// fails naming it with its output, the tag is not written, and the JUnit
// report has it failed and the others passed with their durations.
func TestBuildFailingTest(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": `from: busybox
steps:
  - run: echo built > /built
tests:
  - name: slow-pass
    run: sleep 0.2 && grep -q built /built
  - name: broken
    run: echo "the broken output"; echo "to stderr" >&2; exit 3
  - name: quick-pass
    run: test -f /built
`})
	report := filepath.Join(t.TempDir(), "junit.xml")
	r := kiln(t, root, nil, "build", "-t", "failing:v1", "--junit", report, dir)
	if r.code == 0 {
		t.Fatalf("a build with a failing test exited 0")
	}
	for _, want := range []string{`test "broken" failed`, "exit status 3", "the broken output", "to stderr", "kiln.yml:7"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("a failed build printed %q on stdout", r.stdout)
	}
	if imgs := mustKiln(t, root, "images", "-q").stdout; strings.Contains(imgs, "failing") {
		t.Errorf("the failed build tagged its image: kiln images -q printed %q", imgs)
	}

	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no JUnit report: %v", err)
	}
	var rep junitReport
	if err := xml.Unmarshal(b, &rep); err != nil {
		t.Fatalf("JUnit report: %v\n%s", err, b)
	}
	got := map[string]bool{}
	for _, c := range rep.Cases {
		got[c.Name] = c.Failure != nil
		switch {
		case c.Name == "broken" && c.Failure != nil:
			if !strings.Contains(c.Failure.Message+c.Failure.Text, "exit status 3") || !strings.Contains(c.Failure.Text, "the broken output") {
				t.Errorf("broken's <failure> lacks its exit status or output: %+v", *c.Failure)
			}
		case c.Failure == nil && c.Time <= 0:
			t.Errorf("passing case %s has time %v, want > 0", c.Name, c.Time)
		}
		if c.Name == "slow-pass" && c.Time < 0.2 {
			t.Errorf("slow-pass has time %v, want ≥ 0.2 (it sleeps 0.2 s)", c.Time)
		}
	}
	if diff := cmp.Diff(map[string]bool{"slow-pass": false, "broken": true, "quick-pass": false}, got); diff != "" {
		t.Errorf("JUnit cases, name → failed (-want +got):\n%s\n%s", diff, b)
	}
}

// TestBuildBadInput gives kiln build broken manifests: each fails with
// one line on stderr naming the manifest's file:line and what is wrong,
// and leaves no cache record behind.
func TestBuildBadInput(t *testing.T) {
	root := buildRoot(t)
	records := filepath.Join(root, "cache", "records")
	tests := []struct {
		name     string
		manifest string
		line     int
		want     []string // substrings of the error, besides file:line
	}{
		{"undefined variable", "from: busybox\nsteps:\n  - run: echo {{ nosuchvar }}\n", 3, []string{"nosuchvar"}},
		{"template syntax", "from: busybox\nsteps:\n  - run: echo hi\n  - run: echo {% if %}\n", 4, nil},
		{"unclosed tag", "from: busybox\nsteps:\n{% for x in xs %}\n  - run: echo {{ x }}\n", 3, []string{"for"}},
		{"yaml syntax", "from: busybox\nsteps:\n  - run: [unclosed\n", 3, []string{"YAML"}},
		{"unknown key", "from: busybox\nstepz:\n  - run: echo hi\n", 2, []string{"stepz"}},
		{"unknown step key", "from: busybox\nsteps:\n  - rnu: echo hi\n", 3, []string{"rnu"}},
		{"unknown stage", "stages:\n  main:\n    from: busybox\n    steps:\n      - copy: {from: nosuch, src: /a, dst: /b}\n", 5, []string{"nosuch"}},
		{"cycle", "stages:\n  a:\n    from: busybox\n    steps:\n      - copy: {from: b, src: /x, dst: /x}\n  b:\n    from: busybox\n    steps:\n      - copy: {from: a, src: /x, dst: /x}\n", 0, []string{"cycle"}},
		{"copy outside the context", "from: busybox\nsteps:\n  - copy: {src: ../../etc/passwd, dst: /p}\n", 3, []string{"../../etc/passwd"}},
		{"missing base", "from: nosuchimage\nsteps:\n  - run: echo hi\n", 1, []string{"docker.io/library/nosuchimage:latest", "kiln import DIR -t nosuchimage"}},
		{"include outside", "from: busybox\nsteps:\n  - run: echo '{% include \"/etc/passwd\" %}'\n", 3, []string{"/etc/passwd"}},
		{"failing step", "from: busybox\nsteps:\n  - run: exit 7\n  - run: echo never\n", 3, []string{"exit status 7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"kiln.yml": tt.manifest})
			before := countFiles(t, records)
			// JSON progress goes to stdout, so stderr holds only the error.
			r := kiln(t, root, nil, "build", "--progress", "json", dir)
			if r.code == 0 {
				t.Fatalf("exit 0, want a failure")
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 1 {
				t.Errorf("stderr has %d lines, want 1:\n%s", len(lines), r.stderr)
			}
			first := lines[0]
			path := filepath.Join(dir, "kiln.yml")
			if tt.line > 0 {
				if at := path + ":" + strconv.Itoa(tt.line) + ":"; !strings.Contains(first, at) {
					t.Errorf("error %q does not name %s", first, at)
				}
			} else if !strings.Contains(first, path+":") {
				t.Errorf("error %q does not name %s:LINE", first, path)
			}
			for _, w := range tt.want {
				if !strings.Contains(first, w) {
					t.Errorf("error %q does not mention %q", first, w)
				}
			}
			if tt.name == "cycle" && !strings.Contains(first, "a → b → a") && !strings.Contains(first, "b → a → b") {
				t.Errorf("error %q does not name the cycle a → b → a", first)
			}
			if after := countFiles(t, records); after != before {
				t.Errorf("the failed build left %d cache records (had %d)", after, before)
			}
		})
	}
}

// TestBuildReproducible builds examples/hello with SOURCE_DATE_EPOCH on
// two fresh roots (the same digest), and without it twice on one root
// (a fully cached rebuild gives the same digest).
func TestBuildReproducible(t *testing.T) {
	enginetest.RequireRoot(t)
	bb := enginetest.Busybox(t)
	freshRoot := func(t *testing.T) string {
		root := newRoot(t)
		mustKiln(t, root, "import", bb, "-t", "busybox", "--cmd", "/bin/sh")
		return root
	}
	t.Run("SOURCE_DATE_EPOCH", func(t *testing.T) {
		t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
		one := digestOf(t, mustKiln(t, freshRoot(t), "build", "-f", "../../examples/hello/app.yml"))
		time.Sleep(1100 * time.Millisecond) // a clock that leaks in would now differ
		two := digestOf(t, mustKiln(t, freshRoot(t), "build", "-f", "../../examples/hello/app.yml"))
		if one != two {
			t.Errorf("two builds on fresh roots: %s and %s, want the same digest", one, two)
		}
	})
	t.Run("cached rebuild", func(t *testing.T) {
		root := freshRoot(t)
		one := digestOf(t, mustKiln(t, root, "build", "-f", "../../examples/hello/app.yml"))
		time.Sleep(1100 * time.Millisecond)
		r := mustKiln(t, root, "build", "-f", "../../examples/hello/app.yml")
		if two := digestOf(t, r); one != two {
			t.Errorf("a cached rebuild gave %s, the first build %s", two, one)
		}
		if !strings.Contains(r.stderr, "0 nodes ran") {
			t.Errorf("the rebuild ran nodes: %s", r.stderr)
		}
	})
}
