package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// TestWalk resolves hostile paths inside a root: whatever the links,
// walk names (and creates) a file inside the root, never one outside.
func TestWalk(t *testing.T) {
	host := t.TempDir() // stands for the host, outside the root
	tests := []struct {
		name    string
		links   map[string]string // in the root: name → target
		path    string
		opts    walkOptions
		wantRel string
		wantErr string // a substring; "" for none
	}{
		{name: "plain", path: "/a/b", opts: walkOptions{create: true}, wantRel: "a/b"},
		{name: "absolute link", links: map[string]string{"l": "/x"}, path: "/l/y", opts: walkOptions{create: true}, wantRel: "x/y"},
		{name: "absolute link to the host", links: map[string]string{"l": host}, path: "/l/y", opts: walkOptions{create: true}, wantRel: strings.TrimPrefix(host, "/") + "/y"},
		{name: "dotdot past the root", path: "/../../../x", opts: walkOptions{create: true}, wantRel: "x"},
		{name: "link with dotdot past the root", links: map[string]string{"l": "../../../../x"}, path: "/l", opts: walkOptions{create: true}, wantRel: "x"},
		{name: "link to the root", links: map[string]string{"q": "/"}, path: "/q" + host + "/dir", opts: walkOptions{create: true}, wantRel: strings.TrimPrefix(host, "/") + "/dir"},
		{name: "magic link", links: map[string]string{"m": "/proc/self/root" + host}, path: "/m/z", opts: walkOptions{create: true}, wantRel: "proc/self/root" + host + "/z"},
		{name: "dangling link", links: map[string]string{"d": "/nowhere/x"}, path: "/d", opts: walkOptions{create: true, file: true}, wantRel: "nowhere/x"},
		{name: "link loop", links: map[string]string{"a": "b", "b": "a"}, path: "/a/x", opts: walkOptions{create: true}, wantErr: "too many levels"},
		{name: "self loop", links: map[string]string{"s": "/s"}, path: "/s", wantErr: "too many levels"},
		{name: "no follow", links: map[string]string{"proc": "/newproc"}, path: "/proc", opts: walkOptions{create: true, noFollow: true}, wantErr: "/proc is a symbolic link (to /newproc)"},
		{name: "missing without create", path: "/nothing", wantErr: "no such file"},
		{name: "through a file", links: map[string]string{"f": "/etc/hostname"}, path: "/f/x", wantErr: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "etc", "hostname"), []byte("h\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			root := openWithLinks(t, dir, tt.links)
			hostBefore, _ := os.ReadDir(host)
			fd, rel, err := walk(root, tt.path, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("walk %s: error %v, want one saying %q", tt.path, err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("walk %s: %v", tt.path, err)
			} else {
				defer unix.Close(fd)
				if rel != tt.wantRel {
					t.Errorf("walk %s resolved to %q, want %q", tt.path, rel, tt.wantRel)
				}
				// The descriptor is the file of that name in the root.
				var a, b unix.Stat_t
				if err := unix.Fstat(fd, &a); err != nil {
					t.Fatal(err)
				}
				if err := unix.Lstat(filepath.Join(dir, rel), &b); err != nil {
					t.Fatalf("%s is not in the root: %v", rel, err)
				}
				if a.Ino != b.Ino || a.Dev != b.Dev {
					t.Errorf("the descriptor is not %s in the root", rel)
				}
			}
			if hostAfter, _ := os.ReadDir(host); len(hostAfter) != len(hostBefore) {
				t.Errorf("walk created %v outside the root", hostAfter)
			}
		})
	}
}

// openWithLinks makes the symlinks links (name → target) in dir and
// returns an O_PATH descriptor of dir, closed when the test ends.
func openWithLinks(t *testing.T, dir string, links map[string]string) int {
	t.Helper()
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(root) })
	return root
}

// TestKernelMountpointLinks starts containers whose image makes /proc,
// /sys or /dev a symlink: the start fails naming the path, instead of
// mounting there and masking nothing.
func TestKernelMountpointLinks(t *testing.T) {
	for _, p := range []string{"proc", "sys", "dev"} {
		t.Run(p, func(t *testing.T) {
			e := newEnv(t)
			if err := os.RemoveAll(filepath.Join(e.lower, p)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/new"+p, filepath.Join(e.lower, p)); err != nil {
				t.Fatal(err)
			}
			_, err := e.tryRun(context.Background(), engine.Spec{Process: sh("true")})
			if err == nil || !strings.Contains(err.Error(), "/"+p+" is a symbolic link") {
				t.Errorf("error %v, want one saying /%s is a symbolic link", err, p)
			}
		})
	}
}

// TestMasksApplied checks that every masked and read-only kernel path
// the kernel has is a mount of its own in the container, read-only.
func TestMasksApplied(t *testing.T) {
	e := newEnv(t)
	r := e.run(context.Background(), engine.Spec{Process: sh("cat /proc/self/mountinfo")})
	mounts := map[string]string{} // mount point → its options
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			mounts[f[4]] = f[5]
		}
	}
	for _, paths := range []struct {
		list []string
		ro   bool
	}{{maskedPaths, false}, {readonlyPaths, true}} {
		for _, p := range paths.list {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				continue // not on this kernel
			}
			opts, ok := mounts[p]
			if !ok {
				t.Errorf("%s is not masked", p)
			} else if paths.ro && !strings.HasPrefix(opts, "ro") {
				t.Errorf("%s is mounted %s, want ro", p, opts)
			}
		}
	}
}
