package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/image/store"
)

func TestCacheCommands(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	dir := t.TempDir()
	m := "from: busybox\nsteps:\n  - run: echo one > /one\n  - run: echo two > /two\n  - run: echo three > /three\n"
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "build", dir)

	ls := mustKiln(t, root, "cache", "ls").stdout
	for _, step := range []string{"run: echo one > /one", "run: echo two > /two", "run: echo three > /three"} {
		if !strings.Contains(ls, step) {
			t.Errorf("cache ls lacks %q:\n%s", step, ls)
		}
	}
	if du := mustKiln(t, root, "cache", "du").stdout; !strings.HasPrefix(du, "3 records, ") {
		t.Errorf("cache du: %q", du)
	}
	if v := mustKiln(t, root, "cache", "verify").stdout; !strings.HasPrefix(v, "3 records, ") || !strings.HasSuffix(v, " 0 bad\n") {
		t.Errorf("cache verify: %q", v)
	}

	// Corrupt one cached layer, a run step's, kept as its layer
	// directory only (no tar blob): verify names it (the record and the
	// layer directory) and fails; --repair drops the record and the
	// directory, and the next build runs that step again.
	entries, err := openCache(t, root).List(context.Background())
	if err != nil || len(entries) != 3 {
		t.Fatalf("List: %d entries, %v", len(entries), err)
	}
	ld := filepath.Join(root, "layers", entries[0].DiffID.Hex)
	files, err := filepath.Glob(filepath.Join(ld, "[ot]*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("the layer directory %s holds %v (%v), want one of /one, /two, /three", ld, files, err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := kiln(t, root, nil, "cache", "verify")
	if r.code == 0 || !strings.Contains(r.stdout, " 2 bad") || !strings.Contains(r.stdout, entries[0].Key.String()[:12]) {
		t.Errorf("verify of a corrupt layer: exit %d, %q", r.code, r.stdout)
	}
	if r := mustKiln(t, root, "cache", "verify", "--repair"); !strings.Contains(r.stdout, "deleted") {
		t.Errorf("verify --repair: %q", r.stdout)
	}
	if r := mustKiln(t, root, "build", dir); !strings.Contains(r.stderr, "1 node ran") {
		t.Errorf("after repair the build should run the repaired step again: %s", r.stderr)
	}

	// Prune everything: the next build runs every step.
	if r := mustKiln(t, root, "cache", "prune"); !strings.HasPrefix(r.stdout, "removed 3 records") {
		t.Errorf("cache prune: %q", r.stdout)
	}
	if r := mustKiln(t, root, "cache", "ls"); strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("cache ls after prune:\n%s", r.stdout)
	}
	if r := mustKiln(t, root, "build", dir); !strings.Contains(r.stderr, "3 nodes ran") {
		t.Errorf("after prune the build should run every step: %s", r.stderr)
	}
	if r := kiln(t, root, nil, "cache", "prune", "--filter", "since=1h"); r.code == 0 {
		t.Error("prune --filter since=1h was accepted")
	}
}

// openCache opens the cache of root, as kiln does.
func openCache(t *testing.T, root string) *cache.Cache {
	t.Helper()
	s, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPruneDuringBuilds prunes the whole cache in a loop while four kiln
// processes build: every build succeeds (a layer in use is never
// collected).
func TestPruneDuringBuilds(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	var dirs []string
	for i := 0; i < 4; i++ {
		dir := t.TempDir()
		m := fmt.Sprintf("from: busybox\nsteps:\n  - run: echo shared > /shared\n  - run: echo %d > /own\n  - run: cat /shared /own > /both\ntests:\n  - name: both\n    run: test \"$(cat /both)\" = \"$(printf 'shared\\n%d')\"\n", i, i)
		if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	stop := make(chan struct{})
	var pruner sync.WaitGroup
	pruner.Add(1)
	prunes := 0
	go func() {
		defer pruner.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cmd := exec.Command(os.Args[0], "--root", root, "cache", "prune")
			cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("cache prune during builds: %v\n%s", err, out)
				return
			}
			prunes++
		}
	}()
	var wg sync.WaitGroup
	for round := 0; round < 2; round++ {
		for _, dir := range dirs {
			wg.Add(1)
			go func(dir string) {
				defer wg.Done()
				cmd := exec.Command(os.Args[0], "--root", root, "build", "--progress", "plain", dir)
				cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("build of %s during prunes: %v\n%s", dir, err, out)
				}
			}(dir)
		}
		wg.Wait()
	}
	close(stop)
	pruner.Wait()
	if prunes == 0 {
		t.Error("no prune ran during the builds")
	}
	t.Logf("%d prunes ran during 8 builds", prunes)
}

// TestPruneKeepStorage: prune --keep-storage keeps the cache's layers,
// and the store's blobs that no image needs, under the size; every blob
// of a tagged image stays, whatever records go.
func TestPruneKeepStorage(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	for i, tag := range []string{"kept", ""} {
		dir := t.TempDir()
		m := "from: busybox\nsteps:\n"
		for j := 0; j < 3; j++ {
			m += fmt.Sprintf("  - run: head -c 200000 /dev/urandom > /f%d-%d\n", i, j)
		}
		if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"build", dir}
		if tag != "" {
			args = append(args, "-t", tag)
		}
		d := strings.TrimSpace(mustKiln(t, root, args...).stdout)
		if tag == "" {
			// An untagged build is kept as a dangling image until removed,
			// as docker keeps one: remove it, so that only the cache keeps
			// its layers.
			mustKiln(t, root, "rmi", d)
		}
	}
	if du := mustKiln(t, root, "cache", "du").stdout; !strings.HasPrefix(du, "6 records, ") {
		t.Fatalf("cache du: %q", du)
	}
	// Make every blob older than the collection's grace period.
	blobs := filepath.Join(root, "oci", "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Minute)
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(blobs, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}
	const keep = 450_000
	mustKiln(t, root, "cache", "prune", "--keep-storage", "450k")

	entries, err := openCache(t, root).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var cached int64
	for _, e := range entries {
		cached += e.Layer.Size
	}
	if cached > keep || len(entries) == 0 || len(entries) == 6 {
		t.Errorf("after prune --keep-storage 450k: %d records, %d bytes of layers; want some, at most %d bytes", len(entries), cached, keep)
	}
	needed := map[string]bool{}
	for _, img := range []string{"kept", "busybox"} {
		for _, l := range inspectJSON(t, root, img).Layers {
			needed[strings.TrimPrefix(l.Digest, "sha256:")] = true
		}
	}
	var other int64
	ents, err = os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !needed[e.Name()] && fi.Size() > 10_000 { // leave out manifests and configs
			other += fi.Size()
		}
		delete(needed, e.Name())
	}
	// A run step's layer is kept as its layer directory, without a tar
	// blob (store.CommitLayerDir): the store has it while IsLazy says so.
	// (Such a directory goes with a collection after store.GCGrace, by
	// its change time, which the test cannot set back: the layers of the
	// pruned records are not counted in other.)
	s, err := store.Open(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	for hex := range needed {
		if s.IsLazy(v1.Hash{Algorithm: "sha256", Hex: hex}) {
			delete(needed, hex)
		}
	}
	if len(needed) > 0 {
		t.Errorf("prune removed blobs that the images kept and busybox need: %v", needed)
	}
	if other > keep {
		t.Errorf("the store keeps %d bytes of layers that no image needs, over the %d asked for", other, keep)
	}
	if r := mustKiln(t, root, "run", "kept", "--", "sh", "-c", "cat /f0-0 /f0-1 /f0-2 | wc -c"); strings.TrimSpace(r.stdout) != "600000" {
		t.Errorf("the kept image after prune: %q", r.stdout)
	}
}
