package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestEscapeStubRemoval runs a step whose tmpfs mount target kiln must
// create (/q/<host dir>/dir/file) and which then replaces /q with a link
// to /: removing the mountpoint stubs after the step must not follow that
// link to the host's empty file and directory of the same path.
func TestEscapeStubRemoval(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	for _, snap := range []string{"overlayfs", "copy"} {
		t.Run(snap, func(t *testing.T) {
			host := t.TempDir()
			if err := os.Mkdir(filepath.Join(host, "dir"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(host, "dir", "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			df := "FROM busybox\nRUN --mount=type=tmpfs,target=/q" + host + "/dir/file mv /q /q.away && ln -s / /q\n"
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			mustKiln(t, root, "--snapshotter", snap, "build", "--no-cache", "-f", filepath.Join(dir, "Dockerfile"), dir)
			for _, p := range []string{filepath.Join(host, "dir", "file"), filepath.Join(host, "dir")} {
				if _, err := os.Lstat(p); err != nil {
					t.Errorf("the host's %s is gone after the step: %v", p, err)
				}
			}
		})
	}
}
