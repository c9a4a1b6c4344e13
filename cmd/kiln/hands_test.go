package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// Tests of issue 18: kiln works the way a Docker user's hands already
// work. No test here needs root unless it says so.

// TestFrontendByContent: a file whose first instruction is a Dockerfile
// instruction is a Dockerfile, whatever its name; Dockerfile.* names are
// Dockerfiles; --frontend overrides both.
func TestFrontendByContent(t *testing.T) {
	root := newRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile.dev":   "FROM busybox AS dev\nRUN echo dev\n",
		"Containerfile.ci": "FROM busybox\nRUN echo ci\n",
		"build.txt":        "# syntax=docker/dockerfile:1\n\n# a comment\narg V=1\nFROM busybox\nRUN echo $V\n",
		"app.yml":          "from: busybox\nsteps:\n  - run: echo yaml\n",
	})
	for _, name := range []string{"Dockerfile.dev", "Containerfile.ci", "build.txt"} {
		t.Run(name, func(t *testing.T) {
			r := mustKiln(t, root, "graph", "--format", "json", "-f", filepath.Join(dir, name), dir)
			if !strings.Contains(r.stdout, "RUN echo") {
				t.Errorf("the graph of %s has no RUN step:\n%s", name, r.stdout)
			}
		})
	}
	t.Run("yaml", func(t *testing.T) {
		r := mustKiln(t, root, "graph", "--format", "json", "-f", filepath.Join(dir, "app.yml"), dir)
		if !strings.Contains(r.stdout, "echo yaml") {
			t.Errorf("the graph of app.yml has no run step:\n%s", r.stdout)
		}
	})
	t.Run("frontend overrides", func(t *testing.T) {
		r := kiln(t, root, nil, "graph", "--frontend", "yaml", "-f", filepath.Join(dir, "Dockerfile.dev"), dir)
		if r.code != exitBadInput || !strings.Contains(r.stderr, "Dockerfile.dev:1:") {
			t.Errorf("--frontend yaml on a Dockerfile: exit %d, stderr %q; want 2 and a YAML error at Dockerfile.dev:1:", r.code, r.stderr)
		}
		r = mustKiln(t, root, "graph", "--format", "json", "--frontend", "dockerfile", "-f", filepath.Join(dir, "build.txt"), dir)
		if !strings.Contains(r.stdout, "RUN echo") {
			t.Errorf("--frontend dockerfile: no RUN step:\n%s", r.stdout)
		}
	})
}

// TestRenderDockerfile: kiln render on a Dockerfile says there is
// nothing to render and which command shows what it builds, instead of
// a YAML error.
func TestRenderDockerfile(t *testing.T) {
	root := newRoot(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo hi\n"})
	for _, args := range [][]string{
		{"render", dir},
		{"render", "-f", filepath.Join(dir, "Dockerfile"), "--frontend", "dockerfile", dir},
	} {
		r := kiln(t, root, nil, args...)
		if r.code != exitBadInput || !strings.Contains(r.stderr, "nothing to render") || !strings.Contains(r.stderr, "kiln graph") {
			t.Errorf("kiln %s: exit %d, stderr %q; want 2, \"nothing to render\" and the kiln graph command", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestOutputLocalAndTar: -o is --output; type=local,dest=DIR writes the
// image's final filesystem (no image) and type=tar,dest=FILE the same
// as one tar, as buildx does; copy: takes a list of sources; a build of
// one node says "1 node ran".
func TestOutputLocalAndTar(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: [a.txt, b.txt], dst: /d/}\n",
		"a.txt":    "A\n",
		"b.txt":    "B\n",
	})
	out := t.TempDir()
	local, tarFile := filepath.Join(out, "fs"), filepath.Join(out, "fs.tar")
	r := mustKiln(t, root, "build", "--progress", "plain", "-o", "type=local,dest="+local, "-o", "type=tar,dest="+tarFile, dir)
	if !strings.Contains(r.stderr, ": 1 node ran, ") {
		t.Errorf("the build of one node does not say \"1 node ran\":\n%s", r.stderr)
	}
	for name, want := range map[string]string{"d/a.txt": "A\n", "d/b.txt": "B\n"} {
		got, err := os.ReadFile(filepath.Join(local, name))
		if err != nil || string(got) != want {
			t.Errorf("type=local: %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Lstat(filepath.Join(local, "bin", "busybox")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("type=local: the base's /bin/busybox: %v", err)
	}
	if _, err := os.Stat(filepath.Join(local, "index.json")); err == nil {
		t.Errorf("type=local wrote an OCI layout, want the filesystem only")
	}
	names := tarNames(t, tarFile)
	for _, n := range []string{"d/a.txt", "d/b.txt", "bin/busybox"} {
		if !names[n] {
			t.Errorf("type=tar: %s is not in the tar (it holds %d entries)", n, len(names))
		}
	}
}

// TestStdinManifest: -f - reads the manifest, or a Dockerfile, from
// stdin; the context is the positional argument, as docker build -f -
// takes it.
func TestStdinManifest(t *testing.T) {
	root := newRoot(t)
	dir := writeContext(t, map[string]string{"a.txt": "A\n"})
	for name, text := range map[string]string{
		"yaml":       "from: busybox\nsteps:\n  - copy: {src: a.txt, dst: /a}\n  - run: echo from-stdin\n",
		"dockerfile": "FROM busybox\nCOPY a.txt /a\nRUN echo from-stdin\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := kiln(t, root, strings.NewReader(text), "graph", "--format", "json", "-f", "-", dir)
			if r.code != 0 || !strings.Contains(r.stdout, "from-stdin") {
				t.Errorf("kiln graph -f - %s: exit %d, stdout %q, stderr %q", dir, r.code, r.stdout, r.stderr)
			}
		})
	}
	t.Run("build", func(t *testing.T) {
		root := buildRoot(t)
		out := filepath.Join(t.TempDir(), "fs")
		r := kiln(t, root, strings.NewReader("from: busybox\nsteps:\n  - copy: {src: a.txt, dst: /a}\n"),
			"build", "-f", "-", "-o", "type=local,dest="+out, dir)
		if r.code != 0 {
			t.Fatalf("kiln build -f - %s: exit %d\n%s", dir, r.code, r.stderr)
		}
		if got, err := os.ReadFile(filepath.Join(out, "a")); err != nil || string(got) != "A\n" {
			t.Errorf("/a = %q, %v; want the context's a.txt", got, err)
		}
	})
}

// TestVersion: kiln version says its version, commit, Go version and
// build date; what make build sets with -ldflags -X wins over what the
// Go toolchain recorded.
func TestVersion(t *testing.T) {
	root := newRoot(t)
	r := mustKiln(t, root, "version")
	for _, w := range []string{"kiln version ", "commit:", "go:      " + runtime.Version(), "built:"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("kiln version does not say %q:\n%s", w, r.stdout)
		}
	}
	r = mustKiln(t, root, "version", "--format", "json")
	var v struct{ Version, Commit, Go, Built string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Go != runtime.Version() || v.Version == "" {
		t.Errorf("kiln version --format json = %q (%v), want version and Go %s", r.stdout, err, runtime.Version())
	}
}

// TestHistoryNewestFirst: kiln history lists the newest build first, as
// docker history does.
func TestHistoryNewestFirst(t *testing.T) {
	root := buildRoot(t)
	first := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo one\n"})
	second := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo two\n"})
	mustKiln(t, root, "build", first)
	mustKiln(t, root, "build", second)
	r := mustKiln(t, root, "history", "--format", "json")
	var hs []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &hs); err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || !strings.HasPrefix(hs[0].Manifest, second) || !strings.HasPrefix(hs[1].Manifest, first) {
		t.Errorf("kiln history lists %+v, want the build of %s first", hs, second)
	}
	r = mustKiln(t, root, "history")
	if lines := strings.Split(r.stdout, "\n"); len(lines) < 3 || !strings.Contains(lines[1], second) {
		t.Errorf("kiln history's first row is not the newest build (%s):\n%s", second, r.stdout)
	}
}

// TestReadVersion: without -ldflags -X, kiln version says what the Go
// toolchain recorded (vcs.revision, vcs.modified, vcs.time).
func TestReadVersion(t *testing.T) {
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"},
	}}
	got := readVersion(bi)
	want := versionInfo{Version: "v1.2.3", Commit: "0123abcd-dirty", Go: runtime.Version(), Built: "(commit time) 2025-01-02T03:04:05Z"}
	if got != want {
		t.Errorf("readVersion = %+v, want %+v", got, want)
	}
	if got := readVersion(nil); got.Version != "unknown" || got.Commit != "unknown" || got.Built != "unknown" {
		t.Errorf("readVersion(nil) = %+v, want unknown for what nothing says", got)
	}
}

// TestMakeBuildVersion: make build stamps the version, commit and build
// date (SOURCE_DATE_EPOCH's) that kiln version prints.
func TestMakeBuildVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kiln with make (-short)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	head, err := exec.Command("git", "-C", repo, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout, so make build has no commit to stamp: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "kiln")
	mk := exec.Command("make", "-C", repo, "build", "KILN="+bin, "SOURCE_DATE_EPOCH=86400")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--format", "json").Output()
	if err != nil {
		t.Fatalf("kiln version: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("kiln version --format json: %q: %v", out, err)
	}
	if v.Commit != strings.TrimSpace(string(head)) || v.Built != "1970-01-02T00:00:00Z" || v.Version == "" || v.Version == "unknown" {
		t.Errorf("kiln version of make build = %+v, want commit %s, built 1970-01-02T00:00:00Z and a version", v, head)
	}
}

// TestValueTypoWarns: a --set value the template never reads is named in
// a warning with the closest name it does read; a --build-arg on a YAML
// manifest is named as the Dockerfile path names unused build args.
func TestValueTypoWarns(t *testing.T) {
	root := newRoot(t)
	dir := writeContext(t, map[string]string{
		"kiln.yml": "---\nvars: {port: 80}\n---\nfrom: busybox\nsteps:\n  - run: echo {{ port }} {{ name|default(\"x\") }}\n",
	})
	r := mustKiln(t, root, "graph", "--set", "prot=1", "--set", "name=a", "--build-arg", "V=1", dir)
	if !strings.Contains(r.stderr, "--set prot") || !strings.Contains(r.stderr, `"port"`) {
		t.Errorf("--set prot=1: stderr %q, want a warning naming prot and the closest name \"port\"", r.stderr)
	}
	if strings.Contains(r.stderr, "--set name") {
		t.Errorf("--set name=a is read by the template, yet warned about: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, "--build-arg V") || !strings.Contains(r.stderr, "--set") {
		t.Errorf("--build-arg on a YAML manifest: stderr %q, want a warning naming it and --set", r.stderr)
	}
}

// TestUseTriesYml: use: ./lib/bad finds lib/bad.yml.
func TestUseTriesYml(t *testing.T) {
	root := newRoot(t)
	dir := writeContext(t, map[string]string{
		"kiln.yml":      "from: busybox\nsteps:\n  - use: ./lib/hello\n",
		"lib/hello.yml": "steps:\n  - run: echo from-module\n",
	})
	r := kiln(t, root, nil, "graph", "--format", "json", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "from-module") {
		t.Errorf("use: ./lib/hello with lib/hello.yml: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestBuildNoSuchContext: kiln build nosuchdir says the directory does
// not exist, not that it holds no manifest.
func TestBuildNoSuchContext(t *testing.T) {
	root := newRoot(t)
	missing := filepath.Join(t.TempDir(), "nosuchdir")
	r := kiln(t, root, nil, "build", missing)
	if r.code != exitBadInput || !strings.Contains(r.stderr, missing+" does not exist") {
		t.Errorf("kiln build %s: exit %d, stderr %q; want 2 and \"%s does not exist\"", missing, r.code, r.stderr, missing)
	}
}

// TestBuildChecksInputsFirst: every copy and template source, and the
// --target, is checked before anything runs, and every problem is listed
// with its file:line:col, each said the same way.
func TestBuildChecksInputsFirst(t *testing.T) {
	root := buildRoot(t)
	records := filepath.Join(root, "cache", "records")
	dir := writeContext(t, map[string]string{
		"kiln.yml":  "from: busybox\nsteps:\n  - run: echo first > /first\n  - copy: {src: nosuch.txt, dst: /a}\n  - template: {src: missing.j2, dst: /b}\n  - copy: {src: [there.txt, gone.txt], dst: /c/}\n",
		"there.txt": "here\n",
	})
	before := countFiles(t, records)
	r := kiln(t, root, nil, "build", dir)
	path := filepath.Join(dir, "kiln.yml")
	if r.code != exitBadInput {
		t.Errorf("exit %d, want 2", r.code)
	}
	for _, w := range []string{path + ":4:", "nosuch.txt", path + ":5:", "missing.j2", path + ":6:", "gone.txt"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stderr, `"there.txt"`) {
		t.Errorf("stderr names there.txt, which exists:\n%s", r.stderr)
	}
	if after := countFiles(t, records); after != before {
		t.Errorf("the build ran steps before failing: %d cache records, had %d", after, before)
	}
	r = kiln(t, root, nil, "build", "--target", "nosuch", dir)
	if r.code != exitBadInput || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("--target nosuch: exit %d, stderr %q", r.code, r.stderr)
	}
}
