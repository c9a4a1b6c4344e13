package executor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor/buildctx"
	"github.com/kiln-build/kiln/fsm"
	"github.com/kiln-build/kiln/image/store"
	"github.com/kiln-build/kiln/manifest"
)

// dryRun computes the keys of the manifest in dir, without a snapshotter
// or a runtime.
func dryRun(t *testing.T, dir string, s *store.Store) *Result {
	t.Helper()
	return dryRunWith(t, dir, s, Options{})
}

// dryRunWith is dryRun with opts.
func dryRunWith(t *testing.T, dir string, s *store.Store, opts Options) *Result {
	t.Helper()
	opts.DryRun = true
	return buildWith(t, dir, s, opts)
}

// buildWith builds the manifest in dir with opts, whose Store, Cache and
// Tmp it sets, and Context too unless given.
func buildWith(t *testing.T, dir string, s *store.Store, opts Options) *Result {
	t.Helper()
	ctx := context.Background()
	b, err := manifest.Load(ctx, filepath.Join(dir, "kiln.yml"), manifest.Options{Context: dir})
	if err != nil {
		t.Fatal(err)
	}
	g, err := dag.Compile(b)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Context == nil {
		if opts.Context, err = buildctx.Open(dir); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Cache, err = cache.Open(ctx, s); err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Tmp = s, t.TempDir()
	res, err := Build(ctx, b, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestDryRunInputs computes keys without running anything: every node
// gets its key and what it covers, a copy its files, and a changed file
// changes the keys from its copy on.
func TestDryRunInputs(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"kiln.yml":  "from: scratch\nsteps:\n  - env: {A: b}\n  - copy: {src: ./src, dst: /app}\n  - run: cat /app/x\n",
		"src/x":     "x\n",
		"src/y/z":   "z\n",
		"unrelated": "u\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res := dryRun(t, dir, s)
	if res.Image != nil {
		t.Error("a dry run assembled an image")
	}
	for _, k := range []string{"main/base", "main/0", "main/1", "main/2"} {
		in, ok := res.Inputs[k]
		if !ok || in.Key == (cache.Key{}) {
			t.Errorf("node %s has no key", k)
		}
		if res.States[k] != fsm.Cached {
			t.Errorf("node %s ended %s, want cached", k, res.States[k])
		}
	}
	if in := res.Inputs["main/0"]; in.Looked || in.Input.Kind != "env" {
		t.Errorf("the env step: %+v (looked up, or not an env key)", in)
	}
	run := res.Inputs["main/2"]
	if !run.Looked || run.Hit || run.Input.Parent != res.Inputs["main/1"].Key {
		t.Errorf("the run step: looked %v hit %v, parent is the copy's key: %v", run.Looked, run.Hit, run.Input.Parent == res.Inputs["main/1"].Key)
	}
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "cat /app/x"}, run.Input.Args); diff != "" {
		t.Errorf("run key args (-want +got):\n%s", diff)
	}
	cp := res.Inputs["main/1"]
	var paths []string
	for _, src := range cp.Sources {
		for _, f := range src.Files {
			paths = append(paths, f.Path)
		}
	}
	if diff := cmp.Diff([]string{"src", "src/x", "src/y", "src/y/z"}, paths); diff != "" {
		t.Errorf("copy source files (-want +got):\n%s", diff)
	}
	if len(cp.Sources) != 1 || len(cp.Input.Inputs) != 1 || cp.Sources[0].Digest != cp.Input.Inputs[0] {
		t.Errorf("the copy's key input is not its source's digest: %+v", cp)
	}

	// Same inputs, same keys; a changed copied file changes the copy's
	// key and the run's, not the env step's.
	again := dryRun(t, dir, s)
	if again.Inputs["main/2"].Key != run.Key {
		t.Error("a second dry run gave another key")
	}
	if err := os.WriteFile(filepath.Join(dir, "src/y/z"), []byte("Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := dryRun(t, dir, s)
	if changed.Inputs["main/0"].Key != res.Inputs["main/0"].Key || changed.Inputs["main/1"].Key == cp.Key || changed.Inputs["main/2"].Key == run.Key {
		t.Error("changing src/y/z should change the keys of the copy and the run only")
	}
}
