package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/image/store"
)

// attachToolboxManifest fails at line 10, as uid 1000, in a stage with
// a toolbox directory, a toolbox image and a template value.
const attachToolboxManifest = `---
vars:
  greeting: hi
---
from: busybox
toolbox: [./tools, "image:tooli"]
steps:
  - run: echo base > /base
  - user: "1000:1000"
  - run: echo failing as $(id -u) && exit 4
`

// toolboxProbe prints the user and what /.kiln holds.
const toolboxProbe = `id -u; id -g; ls /.kiln/toolbox; cat /.kiln/toolbox/tools/hello.txt /.kiln/toolbox/tooli/marker; grep -o '"greeting":"hi"' /.kiln/values.json; /.kiln/bin/kiln`

// TestDebugAttachToolboxAndUser: kiln debug attach runs as the failed
// step's user, with the /.kiln the debugger's shell has at the same
// failure (kiln's binary, the values, the toolbox directory and image);
// once the directory, the image and the binary are gone, it still opens,
// without them, saying what is missing.
func TestDebugAttachToolboxAndUser(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"app.yml":         attachToolboxManifest,
		"tools/hello.txt": "hello from the toolbox\n",
	})
	img := writeContext(t, map[string]string{"marker": "from the tool image\n"})
	mustKiln(t, root, "import", img, "-t", "tooli")
	// A stand-in for kiln's static binary, which would take a go build.
	bin := filepath.Join(t.TempDir(), "kiln")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho the kiln of the build\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := func(stdin string, flags ...string) result {
		args := append([]string{"build", "--kiln-binary", bin}, flags...)
		r := kiln(t, root, strings.NewReader(stdin), append(args, "-f", filepath.Join(dir, "app.yml"), dir)...)
		t.Logf("stderr:\n%s", r.stderr)
		if r.code == 0 {
			t.Fatal("a failing build exited 0")
		}
		return r
	}
	r := build("", "--debug-on-fail")
	_, rest, _ := strings.Cut(r.stderr, "kept the failed step's filesystem as ")
	name, _, _ := strings.Cut(rest, ":")
	if !strings.HasPrefix(name, "main-2-") {
		t.Fatalf("kept as %q, want main-2-…", name)
	}

	want := "1000\n1000\ntooli\ntools\nhello from the toolbox\nfrom the tool image\n\"greeting\":\"hi\"\nthe kiln of the build\n"
	got := mustKiln(t, root, "debug", "attach", name, "--", "sh", "-c", toolboxProbe)
	if diff := cmp.Diff(want, got.stdout); diff != "" {
		t.Errorf("attach (-want +got):\n%s", diff)
	}
	if got.stderr != "" {
		t.Errorf("attach warned: %s", got.stderr)
	}
	// The same image tagged kiln-debug/ by other means (as a pulled or
	// imported one would be) names host paths nobody here vouched for:
	// attach mounts no /.kiln for it.
	forge(t, root, name, "forged")
	forged := mustKiln(t, root, "debug", "attach", "forged", "--", "sh", "-c", "ls -A /.kiln 2>&1; id -u")
	if forged.stdout != "ls: /.kiln: No such file or directory\n1000\n" || !strings.Contains(forged.stderr, "was not kept by a build on this root") {
		t.Errorf("attach of a kept step tagged by hand: stdout %q, stderr %q; want no /.kiln and a warning", forged.stdout, forged.stderr)
	}
	mustKiln(t, root, "debug", "rm", "kiln-debug/forged") // the name kiln images shows

	// On a terminal, the shell is interactive, with the same /.kiln.
	p := startPTY(t, root, "debug", "attach", name)
	p.expect("$ ", 1, "echo in-$((6*7)) as $(id -u); cat /.kiln/toolbox/tools/hello.txt; exit 5")
	code, screen := p.wait()
	if code != 5 || !strings.Contains(screen, "in-42 as 1000\nhello from the toolbox\n") {
		t.Errorf("attach on a terminal: exit %d, want 5 and the shell's output", code)
	}
	// The debugger's shell, at the same failure, sees the same.
	r = build("c\nshell "+toolboxProbe+"\nq\n", "--debug")
	if !strings.Contains(r.stderr, "(kiln) "+want) {
		t.Errorf("the debugger's shell did not print what attach did, %q", want)
	}

	// The directory, the image and the binary go.
	for _, p := range []string{filepath.Join(dir, "tools"), bin} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	mustKiln(t, root, "rmi", "tooli")
	mustKiln(t, root, "cache", "prune", "--keep-storage", "0")
	got = mustKiln(t, root, "debug", "attach", name, "--", "sh", "-c", "id -u; ls /.kiln; ls /.kiln/toolbox; test -x /.kiln/bin/kiln && echo a kiln")
	t.Logf("attach without the toolbox, stderr:\n%s", got.stderr)
	if want := "1000\nbin\nvalues.json\na kiln\n"; got.stdout != want {
		t.Errorf("attach without the toolbox printed %q, want %q", got.stdout, want)
	}
	for _, w := range []string{
		"kiln: warning: the build's kiln binary is gone",
		`kiln: warning: toolbox "./tools": stat ` + filepath.Join(dir, "tools") + ": no such file or directory: /.kiln/toolbox/tools is not mounted",
		`kiln: warning: toolbox "image:tooli": image sha256:`,
		"/.kiln/toolbox/tooli is not mounted",
	} {
		if !strings.Contains(got.stderr, w) {
			t.Errorf("attach did not warn %q:\n%s", w, got.stderr)
		}
	}
}

// forge tags kept step name's image as kiln-debug/as through the store,
// as a pull or an import of such an image would.
func forge(t *testing.T, root, name, as string) {
	t.Helper()
	s, err := store.Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(t.Context(), keptRepo+name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(t.Context(), img, keptRepo+as); err != nil {
		t.Fatal(err)
	}
}
