package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrency: 8 kiln processes build at once on one root, the same
// manifest and manifests sharing steps, while another kiln removes images
// (which collects garbage) in a loop. Every build succeeds with the digest
// a lone build gives; each new step runs once; cached steps whose blobs
// only the cache keeps (too old for the collection's grace period) stay
// usable.

// sharedSteps starts both manifests of the test; its steps are cached
// before the concurrent builds.
const sharedSteps = `from: busybox
steps:
  - run: echo shared one > /one
  - copy: {src: data.txt, dst: /data.txt}
`

func TestConcurrentBuildsWithGC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 8 builds at once: skipped with -short")
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	files := map[string]string{
		"data.txt": "data\n",
		"p.yml":    sharedSteps,
		"a.yml": sharedSteps + `  - run: sleep 0.5 && echo a > /a
  - run: cat /one /data.txt /a > /all
tests:
  - name: a
    run: grep -q a /all
`,
		"b.yml": sharedSteps + `  - run: sleep 0.5 && echo b > /b
  - run: cat /one /b > /all
`,
	}
	// The right digests: one build of each on a root of its own.
	ref := buildRoot(t)
	refDir := writeContext(t, files)
	want := map[string]string{
		"a.yml": digestOf(t, mustKiln(t, ref, "build", "-f", filepath.Join(refDir, "a.yml"), refDir)),
		"b.yml": digestOf(t, mustKiln(t, ref, "build", "-f", filepath.Join(refDir, "b.yml"), refDir)),
	}

	root := buildRoot(t)
	dir := writeContext(t, files)
	mustKiln(t, root, "build", "-f", filepath.Join(dir, "p.yml"), dir)
	// Age every blob past the grace period, so that only references
	// (the busybox tag, the cache records) keep them; and add an aged
	// blob nothing refers to, which a collection must remove.
	blobs := filepath.Join(root, "oci", "blobs", "sha256")
	junk := []byte("garbage nobody refers to\n")
	sum := sha256.Sum256(junk)
	junkPath := filepath.Join(blobs, hex.EncodeToString(sum[:]))
	if err := os.WriteFile(junkPath, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * time.Minute)
	ents, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(blobs, e.Name()), old, old); err != nil {
			t.Fatal(err)
		}
	}

	// Remove an image in a loop, each removal collecting garbage.
	stop := make(chan struct{})
	var gcRuns atomic.Int64
	var gcErr atomic.Value
	var gcDone sync.WaitGroup
	victim := writeContext(t, map[string]string{"victim": "v"})
	gcDone.Add(1)
	go func() {
		defer gcDone.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := os.WriteFile(filepath.Join(victim, "victim"), []byte(fmt.Sprint(i)), 0o644); err != nil {
				gcErr.Store(err.Error())
				return
			}
			for _, args := range [][]string{{"import", victim, "-t", "victim"}, {"rmi", "victim"}} {
				if out, err := kilnCommand(t, root, args...).CombinedOutput(); err != nil {
					gcErr.Store(fmt.Sprintf("kiln %s: %v\n%s", strings.Join(args, " "), err, out))
					return
				}
			}
			gcRuns.Add(1)
		}
	}()

	const n = 8
	manifests := make([]string, n)
	outs := make([]string, n)
	errs := make([]error, n)
	stderrs := make([]strings.Builder, n)
	var wg sync.WaitGroup
	for i := range n {
		manifests[i] = []string{"a.yml", "b.yml"}[i%2]
		cmd := kilnCommand(t, root, "build", "-f", filepath.Join(dir, manifests[i]), dir)
		cmd.Stderr = &stderrs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cmd.Output()
			outs[i], errs[i] = strings.TrimSpace(string(b)), err
		}()
	}
	wg.Wait()
	close(stop)
	gcDone.Wait()
	if v := gcErr.Load(); v != nil {
		t.Errorf("the removal loop failed: %s", v)
	}
	t.Logf("%d image removals (each a collection) ran during the builds", gcRuns.Load())
	if gcRuns.Load() == 0 {
		t.Error("no collection ran during the builds")
	}
	if _, err := os.Stat(junkPath); err == nil {
		t.Error("the aged unreferenced blob survived the collections: did they run?")
	}

	ran := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("build #%d (%s): %v\nstderr:\n%s", i, manifests[i], errs[i], stderrs[i].String())
			continue
		}
		if outs[i] != want[manifests[i]] {
			t.Errorf("build #%d (%s) gave %s, want %s (a lone build's)", i, manifests[i], outs[i], want[manifests[i]])
		}
		ran += strings.Count(stderrs[i].String(), "] done: ")
	}
	// The shared steps were cached before; each of the four new steps
	// runs once, in one of the builds, and the others find its record.
	if ran != 4 {
		for i := range n {
			t.Logf("build #%d (%s):\n%s", i, manifests[i], stderrs[i].String())
		}
		t.Errorf("the new steps ran %d times in all, want 4 (each once)", ran)
	}
	// The cache, and its old blobs, are intact: every record verifies, and
	// the builds are all cache hits now.
	verifyCache(t, root)
	for _, m := range []string{"a.yml", "b.yml"} {
		r := mustKiln(t, root, "build", "-f", filepath.Join(dir, m), dir)
		if d := digestOf(t, r); d != want[m] {
			t.Errorf("rebuilding %s gave %s, want %s", m, d, want[m])
		}
		if strings.Contains(r.stderr, "] done: ") {
			t.Errorf("rebuilding %s ran steps, want all cached:\n%s", m, r.stderr)
		}
	}
}
