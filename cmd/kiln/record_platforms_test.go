package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestBuildPlatformsRecord: a build for two platforms is recorded (kiln
// history lists it with its platforms and the index's digest), and
// --explain after a file changed says, for each platform's copy step
// (named by its platform), that the file changed.
func TestBuildPlatformsRecord(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	plats := host.String() + "," + foreign.String()
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: ./a, dst: /a}\n", "a": "1\n"})
	built := mustKiln(t, root, "build", "--platform", plats, "--progress", "plain", dir)
	first := strings.TrimSpace(built.stdout)
	for _, p := range []platform.Platform{host, foreign} {
		if !strings.Contains(built.stderr, "["+p.String()+"] copy: ./a -> /a") {
			t.Errorf("the plain progress does not name %s's copy step:\n%s", p, built.stderr)
		}
	}

	var hist []struct {
		Digest    string
		Platforms []string
		Ran       int
	}
	if err := json.Unmarshal([]byte(mustKiln(t, root, "history", "--format", "json").stdout), &hist); err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].Digest != first || !slices.Equal(hist[0].Platforms, []string{host.String(), foreign.String()}) || hist[0].Ran != 2 {
		t.Errorf("kiln history: %+v; want one build of %s for %s, 2 copy steps ran", hist, first, plats)
	}

	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustKiln(t, root, "build", "--platform", plats, "--explain", "--progress", "plain", dir)
	for _, p := range []platform.Platform{host, foreign} {
		i := strings.Index(r.stderr, "["+p.String()+"] copy")
		if i < 0 || !strings.Contains(r.stderr[i:], "file a changed") {
			t.Errorf("--explain does not say that a changed for %s's copy:\n%s", p, r.stderr)
		}
	}
}

// TestBuildPlatformsDebugRefused: the debugger's flags with several
// platforms are refused before anything runs, with an error that says
// how to debug one platform's build.
func TestBuildPlatformsDebugRefused(t *testing.T) {
	root, foreign := multiRoot(t)
	plats := platform.Host().String() + "," + foreign.String()
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: ./a, dst: /a}\n", "a": "1\n"})
	for _, flag := range [][]string{{"--debug"}, {"--debug-on-fail"}, {"--break", "copy"}} {
		r := kiln(t, root, strings.NewReader(""), append([]string{"build", "--platform", plats, dir}, flag...)...)
		if r.code != 2 || !strings.Contains(r.stderr, flag[0]+" stops one build") || !strings.Contains(r.stderr, "--platform "+foreign.String()) {
			t.Errorf("build --platform %s %s: exit %d, stderr %q; want 2 and how to debug one platform", plats, flag, r.code, r.stderr)
		}
		if strings.Contains(r.stdout, "sha256:") {
			t.Errorf("build --platform %s %s built something: %q", plats, flag, r.stdout)
		}
	}
}
