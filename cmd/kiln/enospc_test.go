package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/engine/snapshot"
)

// TestBuildDiskFull builds on a root on a small tmpfs: a step that fills
// the disk leaves its commit no room (a step's layer is kept as its
// upperdir, so a layer that fits once commits: see the second build),
// which fails the build with a clear "no space left" message, and leaves
// no cache record, temp file, snapshot or layer directory behind; a
// step that fits then builds.
func TestBuildDiskFull(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=24m"); err != nil {
		t.Skipf("skipping: cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	dir := t.TempDir()
	write := func(m string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 48 MiB of random bytes do not fit: the step fills the disk (and
	// succeeds), and the commit's records run out of space.
	write("from: busybox\nsteps:\n  - run: head -c 50331648 /dev/urandom > /big; true\n")
	r := kiln(t, root, nil, "build", "--progress", "plain", dir)
	if r.code == 0 {
		t.Fatal("a build whose layer does not fit on the disk succeeded")
	}
	if !strings.Contains(r.stderr, "is full") || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("stderr does not say the disk is full:\n%s", r.stderr)
	}
	for _, sub := range []string{"cache/records", "tmp", "snapshots", "containers"} {
		var left []string
		_ = filepath.WalkDir(filepath.Join(root, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !(sub == "snapshots" && d.Name() == snapshot.ProbeRecord) {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("the failed build left %s: %v", sub, left)
		}
	}
	// The base's layer directory, unpacked from its blob, stays; the
	// step's is gone.
	layers, err := os.ReadDir(filepath.Join(root, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]bool{}
	for _, l := range inspectJSON(t, root, "busybox").Layers {
		base[strings.TrimPrefix(l.DiffID, "sha256:")] = true
	}
	for _, e := range layers {
		if !base[e.Name()] {
			t.Errorf("the failed build left the layer directory %s", e.Name())
		}
	}
	write("from: busybox\nsteps:\n  - run: echo small > /small\n")
	mustKiln(t, root, "build", dir)
	// 12 MiB fit once: the layer is not written a second time.
	write("from: busybox\nsteps:\n  - run: head -c 12582912 /dev/urandom > /big\n")
	mustKiln(t, root, "build", dir)
}
