package container

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/internal/osthread/osthreadtest"
)

// mainThreadEnv names the case a child process of TestMainThread runs.
const mainThreadEnv = "KILN_TEST_MAIN_THREAD"

// TestMainThread calls Mounted and Go from the process's main thread,
// which Go's scheduler gives any goroutine when it is free (a build's
// first copy step often gets it) but never lets exit: a namespace left on
// it outlives its user, and /proc/self names it. Each case runs in a
// child process of its own, whose main thread no earlier test has taken.
func TestMainThread(t *testing.T) {
	enginetest.RequireRoot(t)
	if c := os.Getenv(mainThreadEnv); c != "" {
		mainThreadCase(t, c)
		return
	}
	for _, c := range []string{"mounted", "go", "pod"} {
		t.Run(c, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMainThread$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mainThreadEnv+"="+c)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", c, err, out)
			}
		})
	}
}

// mainThreadCase runs case c of TestMainThread, in its child process.
func mainThreadCase(t *testing.T, c string) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	switch c {
	case "mounted":
		// A copy: Mounted, called from the main thread, starts a writer
		// with Go; the writer must see the mount, and the mount must be
		// gone from the process when Mounted returns.
		set := []engine.Mount{{Type: "bind", Source: src}}
		before, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		osthreadtest.OnMainThread(t, func() {
			err := Mounted(tmp, [][]engine.Mount{set}, func(roots []string) error {
				return fromWriter(filepath.Join(roots[0], "f"))
			})
			if err != nil {
				t.Errorf("a writer of Mounted: %v", err)
			}
		})
		if ns, _ := os.Readlink("/proc/self/ns/mnt"); ns != before {
			t.Errorf("Mounted left the main thread in mount namespace %s, not %s", ns, before)
		}
	case "go":
		// Go called from the main thread in a mount namespace of its
		// own: the goroutine must join it.
		osthreadtest.OnMainThread(t, func() {
			runtime.LockOSThread() // never unlocked: the thread keeps the namespace
			if err := privateBind(src, tmp); err != nil {
				t.Error(err)
			} else if err := fromWriter(filepath.Join(tmp, "f")); err != nil {
				t.Errorf("a goroutine of Go: %v", err)
			}
		})
	case "pod":
		// A pod made and closed from the main thread: the process's
		// network namespace is as it was.
		before, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		rt, err := New(context.Background(), filepath.Join(tmp, "containers"))
		if err != nil {
			t.Fatal(err)
		}
		osthreadtest.OnMainThread(t, func() {
			p, err := rt.NewPod(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			p.Close()
		})
		if ns, _ := os.Readlink("/proc/self/ns/net"); ns != before {
			t.Errorf("NewPod left the main thread in network namespace %s, not %s", ns, before)
		}
	default:
		t.Fatalf("%s=%q: no such case", mainThreadEnv, c)
	}
}

// privateBind binds src on dst in a new mount namespace of the calling
// thread.
func privateBind(src, dst string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	return unix.Mount(src, dst, "", unix.MS_BIND, "")
}

// fromWriter reads p on a goroutine started with Go, as a copy's writer.
func fromWriter(p string) error {
	errc := make(chan error, 1)
	if err := Go(func() { _, err := os.ReadFile(p); errc <- err }); err != nil {
		return err
	}
	return <-errc
}
