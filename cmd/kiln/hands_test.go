package main

import (
	"path/filepath"
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
