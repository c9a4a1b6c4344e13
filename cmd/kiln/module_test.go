package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// greetModule is a module with a required and a defaulted parameter:
// its first step uses only the required one, its second both.
const greetModule = `---
description: Greets someone in /greet.
params:
  who: {required: true, description: whom to greet}
  greeting: {default: hello, description: the word to greet with}
---
steps:
  - run: mkdir -p /greet && echo {{ who }} >> /greet/names
  - run: echo "{{ greeting }} {{ who }}" > /greet/{{ who }}
`

// TestBuildModuleTwice builds a manifest that uses one module twice with
// different with: values: four distinct steps named after the module;
// then changes the module's default, which re-runs only the step that
// uses it in the use that does not override it.
func TestBuildModuleTwice(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"modules/greet/module.yml": greetModule,
		"app.yml": `from: busybox
steps:
  - use: ./modules/greet
    with: {who: alice, greeting: hi}
  - use: ./modules/greet
    with: {who: bob}
tests:
  - name: greeted
    run: grep -qx "hi alice" /greet/alice && grep -qx "hello bob" /greet/bob
`,
	})
	first := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", dir).stdout)
	wantNames := map[string]string{
		"main/base":         "from: busybox",
		"main/0":            "greet: run: mkdir -p /greet && echo alice >> /greet/names",
		"main/1":            `greet: run: echo "hi alice" > /greet/alice`,
		"main/2":            "greet: run: mkdir -p /greet && echo bob >> /greet/names",
		"main/3":            `greet: run: echo "hello bob" > /greet/bob`,
		"main/test/greeted": "test: greeted",
	}
	if diff := cmp.Diff(wantNames, first.names); diff != "" {
		t.Errorf("node names mismatch (-want +got):\n%s", diff)
	}
	wantStates := map[string]string{"main/base": "cached", "main/0": "done", "main/1": "done", "main/2": "done", "main/3": "done", "main/test/greeted": "passed"}
	if diff := cmp.Diff(wantStates, first.final); diff != "" {
		t.Errorf("first build states mismatch (-want +got):\n%s", diff)
	}

	// kiln graph shows the inlined steps
	graph := mustKiln(t, root, "graph", "--format", "mermaid", dir).stdout
	for _, n := range []string{"greet: run: echo &quot;hi alice&quot;", "greet: run: echo &quot;hello bob&quot;"} {
		if !strings.Contains(strings.ReplaceAll(graph, "#quot;", "&quot;"), n) {
			t.Errorf("kiln graph lacks %q:\n%s", n, graph)
		}
	}

	mod := filepath.Join(dir, "modules", "greet", "module.yml")
	if err := os.WriteFile(mod, []byte(strings.Replace(greetModule, "default: hello", "default: hey", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yml"), []byte(strings.Replace(mustRead(t, filepath.Join(dir, "app.yml")), "hello bob", "hey bob", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	again := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", dir).stdout)
	wantStates = map[string]string{"main/base": "cached", "main/0": "cached", "main/1": "cached", "main/2": "cached", "main/3": "done", "main/test/greeted": "passed"}
	if diff := cmp.Diff(wantStates, again.final); diff != "" {
		t.Errorf("after changing the default, states mismatch (-want +got):\n%s", diff)
	}
	if again.names["main/3"] != `greet: run: echo "hey bob" > /greet/bob` {
		t.Errorf("main/3 is %q after changing the default", again.names["main/3"])
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestModuleRegistryLock publishes a module to Debian's docker-registry,
// builds a second project that uses it by digest and by tag, locks it,
// re-pushes the tag with other content, and checks that a --locked build
// does not change while a plain build warns that the lock is stale.
func TestModuleRegistryLock(t *testing.T) {
	root := buildRoot(t)
	reg, ca := loggedInRegistry(t, root)
	base := reg.host + "/base/busybox:1"
	mustKiln(t, root, "push", "busybox", base, ca)

	module := func(greeting string) string {
		return writeContext(t, map[string]string{
			"module.yml": `---
name: motd
description: Writes /etc/motd from a file of the module and a template.
params:
  who: {required: true}
---
steps:
  - copy: {src: files/motd, dst: /etc/motd.{{ who }}}
  - template: {src: banner.j2, dst: /etc/banner.{{ who }}}
tests:
  - name: motd
    run: test -s /etc/motd.{{ who }}
`,
			"files/motd": greeting + "\n",
			"banner.j2":  "{{ who }}: " + greeting + "\n",
		})
	}
	tag := reg.host + "/mods/motd:1"
	d1 := strings.TrimSpace(mustKiln(t, root, "module", "push", module("hello"), tag, ca).stdout)
	if !strings.HasPrefix(d1, "sha256:") {
		t.Fatalf("kiln module push printed %q, want a digest", d1)
	}

	project := writeContext(t, map[string]string{"app.yml": `from: ` + base + `
steps:
  - use: oci://` + reg.host + `/mods/motd@` + d1 + `
    with: {who: pinned}
  - use: oci://` + tag + `
    with: {who: tagged}
tests:
  - name: content
    run: 'grep -qx hello /etc/motd.pinned && grep -qx "tagged: hello" /etc/banner.tagged'
`})
	app := filepath.Join(project, "app.yml")
	first := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", "-f", app, ca).stdout)
	if first.final["main/test/content"] != "passed" || first.final["main/test/motd/motd-2"] != "passed" {
		t.Errorf("tests of the first build: %v", first.final)
	}
	if first.names["main/0"] != "motd: copy: files/motd -> /etc/motd.pinned" {
		t.Errorf("main/0 is named %q", first.names["main/0"])
	}

	mustKiln(t, root, "lock", "-f", app, ca)
	lockText := mustRead(t, filepath.Join(project, "kiln.lock"))
	for _, want := range []string{
		"oci://" + tag + ": " + d1,
		"oci://" + reg.host + "/mods/motd@" + d1 + ": " + d1,
		base + ": sha256:",
	} {
		if !strings.Contains(lockText, want) {
			t.Errorf("kiln.lock lacks %q:\n%s", want, lockText)
		}
	}

	// the tag moves to other content
	d2 := strings.TrimSpace(mustKiln(t, root, "module", "push", module("bye"), tag, ca).stdout)
	if d2 == d1 {
		t.Fatalf("re-pushing other content gave the same digest %s", d2)
	}
	locked := mustKiln(t, root, "build", "--locked", "--progress", "json", "-f", app, ca)
	if got := parseJSONBuild(t, locked.stdout); got.digest != first.digest {
		t.Errorf("--locked after re-pushing the tag built %s, the first build %s", got.digest, first.digest)
	}
	if strings.Contains(locked.stderr, "stale") {
		t.Errorf("--locked warned: %s", locked.stderr)
	}
	plain := kiln(t, root, nil, "build", "--progress", "json", "-f", app, ca)
	wantWarn := "kiln: warning: kiln.lock is stale: module oci://" + tag + " is " + d2 + " now, kiln.lock has " + d1
	if !strings.Contains(plain.stderr, wantWarn) {
		t.Errorf("a plain build's stderr lacks %q:\n%s", wantWarn, plain.stderr)
	}
	if plain.code == 0 {
		t.Errorf("the plain build uses the new module, whose content test must fail; it passed")
	}
	od := kiln(t, root, nil, "outdated", "-f", app, ca)
	if want := "oci://" + tag + "\tlocked " + d1 + "\tnow " + d2 + "\n"; od.stdout != want || od.code != 1 {
		t.Errorf("kiln outdated: exit %d (want 1), printed %q, want %q", od.code, od.stdout, want)
	}

	// the cache lists both; doc reads a registry module
	ls := mustKiln(t, root, "module", "ls", ca).stdout
	for _, d := range []string{d1, d2} {
		if !strings.Contains(ls, d) {
			t.Errorf("kiln module ls lacks %s:\n%s", d, ls)
		}
	}
	doc := mustKiln(t, root, "module", "doc", "oci://"+tag, ca).stdout
	if !strings.Contains(doc, "module motd: Writes /etc/motd") || !strings.Contains(doc, "who        string  (required)") {
		t.Errorf("kiln module doc printed:\n%s", doc)
	}

	// a fresh root has nothing cached: --locked fetches the base and the
	// modules by their locked digests
	fresh := newRoot(t)
	mustKiln(t, fresh, "build", "--locked", "-f", app, ca)
	// a digest the registry does not have fails, naming the reference
	bogus := "sha256:" + strings.Repeat("0", 64)
	if err := os.WriteFile(filepath.Join(project, "kiln.lock"), []byte(strings.ReplaceAll(lockText, "oci://"+tag+": "+d1, "oci://"+tag+": "+bogus)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kiln(t, newRoot(t), nil, "build", "--locked", "-f", app, ca)
	if want := "use oci://" + tag + ": the lock pins " + reg.host + "/mods/motd@" + bogus; r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("--locked with a digest the registry lacks: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
}

// TestExamplesModules builds the two example images of the module
// library in examples/modules, offline, on the busybox base: every test
// branch, their own and their modules', passes.
func TestExamplesModules(t *testing.T) {
	root := buildRoot(t)
	for _, tc := range []struct {
		file  string
		tests []string
	}{
		{"web.yml", []string{"main/test/index", "main/test/add-user/www-exists"}},
		{"tools.yml", []string{"main/test/add-user/ops-exists", "main/test/add-user/audit-exists", "main/test/check/whoami-all"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", "-f", filepath.Join("../../examples/modules", tc.file)).stdout)
			var passed []string
			for node, st := range b.final {
				if strings.Contains(node, "/test/") {
					if st != "passed" {
						t.Errorf("%s ended %s", node, st)
					}
					passed = append(passed, node)
				}
			}
			if diff := cmp.Diff(tc.tests, passed, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("tests mismatch (-want +got):\n%s", diff)
			}
			if b.digest == "" {
				t.Error("no image was built")
			}
		})
	}
}

// TestModuleDoc prints the parameters of a module of the examples, and
// fails on a directory without one.
func TestModuleDoc(t *testing.T) {
	root := newRoot(t)
	got := mustKiln(t, root, "module", "doc", "../../examples/modules/lib/add-user").stdout
	want := `module add-user: Adds a user and its group, with a home directory it owns.

PARAMETER  TYPE    DEFAULT     DESCRIPTION
name       string  (required)  the user's name
uid        int     1000        the user's and its group's id
shell      string  "/bin/sh"   the login shell (one of /bin/sh, /bin/ash, /bin/false)

use:
  - use: ../../examples/modules/lib/add-user
    with: {name: …}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kiln module doc mismatch (-want +got):\n%s", diff)
	}
	r := kiln(t, root, nil, "module", "doc", t.TempDir())
	if r.code == 0 || !strings.Contains(r.stderr, "module.yml: no such file or directory") {
		t.Errorf("kiln module doc of an empty directory: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestModuleRegistryToolbox builds with a registry module whose toolbox:
// is a directory of the module: its steps find it at
// /.kiln/toolbox/NAME, though it lives in kiln's module cache, not in the
// build context.
func TestModuleRegistryToolbox(t *testing.T) {
	root := buildRoot(t)
	reg, ca := loggedInRegistry(t, root)
	module := writeContext(t, map[string]string{
		"module.yml": `---
name: stamp
params:
  to: {required: true}
---
toolbox: [tools]
steps:
  - run: sh /.kiln/toolbox/tools/stamp.sh > {{ to }}
`,
		"tools/stamp.sh": "echo stamped by the module tool\n",
	})
	tag := reg.host + "/mods/stamp:1"
	mustKiln(t, root, "module", "push", module, tag, ca)
	project := writeContext(t, map[string]string{"app.yml": `from: busybox
steps:
  - use: oci://` + tag + `
    with: {to: /stamp}
tests:
  - name: stamped
    run: grep -qx "stamped by the module tool" /stamp
`})
	b := parseJSONBuild(t, mustKiln(t, root, "build", "--progress", "json", "-f", filepath.Join(project, "app.yml"), ca).stdout)
	if b.final["main/test/stamped"] != "passed" {
		t.Errorf("the test of the module tool's output: %v", b.final)
	}
}
