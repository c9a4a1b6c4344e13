package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// procWrite is a step that proves /proc/sys writable without changing
// the host: it writes core_pattern's own value back.
const procWrite = `if cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern; then echo PROC-SYS-"WRITABLE"; fi`

// TestEscapeProcSymlink builds steps over a root filesystem whose /proc
// is an absolute symlink, from an imported image and from a Dockerfile
// alone, with both snapshotters: kiln must refuse the step, naming /proc,
// instead of mounting an unmasked procfs there (its /proc/sys writable:
// core_pattern runs a program as root on the host).
func TestEscapeProcSymlink(t *testing.T) {
	enginetest.RequireRoot(t)
	before, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(t)
	importBusybox(t, root)
	img := enginetest.Busybox(t)
	if err := os.RemoveAll(filepath.Join(img, "proc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/newproc", filepath.Join(img, "proc")); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "import", img, "-t", "proclink", "--cmd", "/bin/sh")

	dockerfiles := map[string]string{
		"imported image": "FROM proclink\nRUN " + procWrite + "\n",
		"dockerfile only": "FROM busybox AS s\n" +
			"RUN mkdir /y && cp -a /bin /etc /y/ && mkdir /y/tmp /y/dev /y/sys && ln -s /newproc /y/proc\n" +
			"FROM scratch\nCOPY --from=s /y/ /\nRUN " + procWrite + "\n",
	}
	for _, snap := range []string{"overlayfs", "copy"} {
		for name, df := range dockerfiles {
			t.Run(snap+"/"+name, func(t *testing.T) {
				dir := writeContext(t, map[string]string{"Dockerfile": df})
				r := kiln(t, root, nil, "--snapshotter", snap, "build", "--no-cache", "-f", filepath.Join(dir, "Dockerfile"), dir)
				out := r.stdout + r.stderr
				if strings.Contains(out, "PROC-SYS-WRITABLE") {
					t.Errorf("the step wrote /proc/sys/kernel/core_pattern:\n%s", out)
				}
				if r.code == 0 {
					t.Errorf("the build succeeded, want it refused: /proc is a symbolic link")
				} else if !strings.Contains(r.stderr, "/proc") || !strings.Contains(r.stderr, "symbolic link") {
					t.Errorf("the build failed without saying /proc is a symbolic link:\n%s", r.stderr)
				}
			})
		}
	}
	after, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the host's core_pattern changed from %q to %q", before, after)
	}
}
