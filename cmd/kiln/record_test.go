package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor/history"
)

const recordManifest = `---
vars:
  greeting: hello
---
from: busybox
steps:
  - run: echo "{{ greeting }} world" > /greeting
  - copy: {src: ./src, dst: /app}
  - run: cat /app/a.txt /greeting > /both
tests:
  - name: both
    run: test -s /both
`

// TestBuildRecordsAndExplains builds, changes a --set value, then a
// copied file: the records list the builds, keep what each key covered
// (enough to compute the key again), and --explain and kiln explain name
// the changed command and file.
func TestBuildRecordsAndExplains(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"app.yml":      recordManifest,
		"src/a.txt":    "a\n",
		"src/sub/b.sh": "echo b\n",
	})
	mf := filepath.Join(dir, "app.yml")
	first := digestOf(t, mustKiln(t, root, "build", "-f", mf, "--progress", "plain", dir))

	// The record: every node, its key and what the key covers.
	hs, err := (&app{root: root}).history()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := hs.Last(t.Context(), mf)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Digest != first || rec.Status != history.Succeeded || rec.Manifest != mf || len(rec.Bases) != 1 || rec.Bases[0].Ref != "busybox" {
		t.Errorf("record: digest %s status %s manifest %s bases %+v", rec.Digest, rec.Status, rec.Manifest, rec.Bases)
	}
	var keys []string
	for _, n := range rec.Nodes {
		keys = append(keys, n.Key+" "+n.State)
		if n.Inputs == nil || n.CacheKey == "" {
			t.Errorf("node %s has no key inputs", n.Key)
			continue
		}
		if n.Kind == "base" {
			continue
		}
		// The recorded inputs are the key's: computing it again gives it.
		in := cache.KeyInput{Kind: n.Inputs.Kind, Args: n.Inputs.Args, Env: n.Inputs.Env, Workdir: n.Inputs.Workdir,
			User: n.Inputs.User, Shell: n.Inputs.Shell, Network: n.Inputs.Network, Epoch: n.Inputs.Epoch}
		if in.Parent, err = cache.ParseKey(n.Inputs.Parent); err != nil {
			t.Fatal(err)
		}
		for _, d := range n.Inputs.Digests {
			h, err := v1.NewHash(d)
			if err != nil {
				t.Fatal(err)
			}
			in.Inputs = append(in.Inputs, h)
		}
		if k := cache.ComputeKey(in).String(); k != n.CacheKey {
			t.Errorf("node %s: the recorded inputs give key %s, the record says %s", n.Key, k, n.CacheKey)
		}
	}
	if diff := cmp.Diff([]string{"main/base cached", "main/0 done", "main/1 done", "main/2 done", "main/test/both passed"}, keys); diff != "" {
		t.Errorf("recorded nodes (-want +got):\n%s", diff)
	}
	copyNode := rec.Node("main/1")
	var paths []string
	for _, s := range copyNode.Inputs.Sources {
		for _, f := range s.Files {
			paths = append(paths, f.Path)
		}
	}
	if diff := cmp.Diff([]string{"src", "src/a.txt", "src/sub", "src/sub/b.sh"}, paths); diff != "" {
		t.Errorf("the copy's recorded files (-want +got):\n%s", diff)
	}

	// A --set value changes: kiln explain (nothing run) and build
	// --explain name the step and show its new command.
	for _, r := range []result{
		mustKiln(t, root, "explain", "-f", mf, "--set", "greeting=bonjour", dir),
		mustKiln(t, root, "build", "-f", mf, "--set", "greeting=bonjour", "--explain", "--progress", "plain", dir),
	} {
		out := r.stdout + r.stderr
		for _, want := range []string{
			"main/0 run: echo \"bonjour world\" > /greeting\n    the command changed:\n      now: echo \"bonjour world\" > /greeting\n      was: echo \"hello world\" > /greeting\n",
			"main/1 copy: ./src -> /app\n    its parent main/0 (run: echo \"bonjour world\" > /greeting) changed\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the explanation does not say %q:\n%s", want, out)
			}
		}
	}
	if r := mustKiln(t, root, "explain", "-f", mf, "--set", "greeting=bonjour", dir); !strings.Contains(r.stdout, "every step is a cache hit") {
		t.Errorf("explain after the build: %s", r.stdout)
	}

	// A copied file changes: the explanation names it by its path.
	if err := os.WriteFile(filepath.Join(dir, "src/sub/b.sh"), []byte("echo B\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustKiln(t, root, "explain", "-f", mf, "--set", "greeting=bonjour", "--format", "json", dir)
	var es []history.Explanation
	if err := json.Unmarshal([]byte(r.stdout), &es); err != nil {
		t.Fatalf("explain --format json: %v\n%s", err, r.stdout)
	}
	if len(es) != 3 || es[0].Node != "main/1" || len(es[0].Reasons) != 1 || es[0].Reasons[0].Input != "file" || es[0].Reasons[0].Path != "src/sub/b.sh" {
		t.Errorf("explain after changing src/sub/b.sh: %+v", es)
	}
	r = mustKiln(t, root, "build", "-f", mf, "--set", "greeting=bonjour", "--explain", "--progress", "plain", dir)
	if !strings.Contains(r.stderr, "main/1 copy: ./src -> /app\n    file src/sub/b.sh changed: sha256:") || strings.Contains(r.stderr, "src/a.txt") {
		t.Errorf("build --explain after changing src/sub/b.sh:\n%s", r.stderr)
	}

	// kiln history lists the three builds, newest first.
	r = mustKiln(t, root, "history", "--format", "json")
	var list []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, strings.Join(e.Set, ",")+" "+e.Status+" "+strconv.Itoa(e.Ran)+"/"+strconv.Itoa(e.Cached))
		if e.Manifest != mf || !strings.HasPrefix(e.Digest, "sha256:") || e.Duration == "" {
			t.Errorf("history entry %+v", e)
		}
	}
	if diff := cmp.Diff([]string{"greeting=bonjour succeeded 3/2", "greeting=bonjour succeeded 4/1", " succeeded 4/1"}, got); diff != "" {
		t.Errorf("kiln history (-want +got):\n%s", diff)
	}
	if r := mustKiln(t, root, "history"); !strings.Contains(r.stdout, "--set greeting=bonjour") || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("kiln history:\n%s", r.stdout)
	}

	// kiln graph --after-build: golden, with durations normalised.
	r = mustKiln(t, root, "graph", "--after-build", "-f", mf, dir)
	dot := regexp.MustCompile(`(ran|failed) [0-9.]+[µm]?s`).ReplaceAllString(r.stdout, "$1 DURATION")
	want, err := os.ReadFile(filepath.Join("testdata", "after-build.dot"))
	if os.IsNotExist(err) && os.Getenv("KILN_UPDATE_GOLDEN") == "1" {
		err = os.WriteFile(filepath.Join("testdata", "after-build.dot"), []byte(dot), 0o644)
		want = []byte(dot)
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), dot); diff != "" {
		t.Errorf("graph --after-build (-want +got):\n%s", diff)
	}
}

// TestGraphSVG renders the last build with Graphviz: cached and run
// nodes are filled differently. Without dot, --format svg is a one-line
// error.
func TestGraphSVG(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - env: {A: b}\n  - run: echo a > /a\n"})
	mustKiln(t, root, "build", "--progress", "plain", dir)
	if _, err := exec.LookPath("dot"); err != nil {
		r := kiln(t, root, nil, "graph", "--after-build", "--format", "svg", dir)
		if r.code == 0 || !strings.Contains(r.stderr, "apt-get install graphviz") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("graph --format svg without dot: exit %d, stderr %q", r.code, r.stderr)
		}
		t.Skip("Graphviz's dot is not installed (apt-get install graphviz): the SVG itself is not checked")
	}
	r := mustKiln(t, root, "graph", "--after-build", "--format", "svg", dir)
	if !strings.HasPrefix(r.stdout, "<?xml") || !strings.Contains(r.stdout, "</svg>") {
		t.Fatalf("not an SVG:\n%s", r.stdout)
	}
	// Graphviz writes each node as a <g class="node"> with its fill.
	nodes := regexp.MustCompile(`(?s)<g id="node\d+" class="node">\s*<title>([^<]+)</title>\s*<[a-z]+ fill="([^"]+)"`).FindAllStringSubmatch(r.stdout, -1)
	fills := map[string]string{}
	for _, m := range nodes {
		fills[m[1]] = m[2]
	}
	if fills["main/base"] == "" || fills["main/1"] == "" || fills["main/base"] != fills["main/0"] || fills["main/base"] == fills["main/1"] {
		t.Errorf("cached (main/base, main/0) and run (main/1) nodes should differ in fill: %v\n%s", fills, r.stdout)
	}
}
