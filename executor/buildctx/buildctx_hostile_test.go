package buildctx

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Hostile build contexts: links that lead out are copied as links and
// their targets never read, unreadable files are errors naming them, and
// sockets and FIFOs are skipped with a warning.

// TestContextLinksOutside copies a context whose links point outside it:
// the copy holds the links themselves, and no byte of their targets.
func TestContextLinksOutside(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("TOP-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outside, "secrets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secrets", "key"), []byte("TOP-SECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(outside, "ctx")
	rel, err := filepath.Rel(dir, secret)
	if err != nil {
		t.Fatal(err)
	}
	makeTree(t, dir,
		node{Name: "a.txt", Data: "a"},
		node{Name: "abs", Link: secret},
		node{Name: "rel", Link: rel},
		node{Name: "etc", Link: "/etc"},
		node{Name: "sub/deep", Link: "../../secrets"},
		node{Name: "sub/passwd", Link: "/etc/passwd"},
	)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Digest(ctx, "."); err != nil {
		t.Fatalf("Digest: %v", err)
	}
	root := t.TempDir()
	if err := c.Copy(ctx, ".", root, "/app/", CopyOptions{}); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	got := map[string]string{}
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		r, _ := filepath.Rel(root, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[r] = "-> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[r] = string(b)
		case fi.IsDir():
			got[r] = "dir"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"app":            "dir",
		"app/a.txt":      "a",
		"app/abs":        "-> " + secret,
		"app/rel":        "-> " + rel,
		"app/etc":        "-> /etc",
		"app/sub":        "dir",
		"app/sub/deep":   "-> ../../secrets",
		"app/sub/passwd": "-> /etc/passwd",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("copied tree (-want +got):\n%s", d)
	}

	// A source named outside the context is an error; one that is a link
	// leading out, or reached through one, resolves inside the context
	// (an absolute target from its root, ".." stopping there), as
	// BuildKit resolves it: here to nothing, never to the files outside.
	for src, want := range map[string]string{
		"abs": "no such file in the build context", "rel": "no such file in the build context",
		"etc/passwd": "too many levels of symbolic links", "sub/deep/key": "no such file in the build context",
		"../secret": "outside the build context", secret: "outside the build context",
	} {
		err := c.Copy(ctx, src, t.TempDir(), "/x", CopyOptions{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Copy(%q): %v, want an error saying %s", src, err, want)
		}
		if _, err := c.Digest(ctx, src); err == nil {
			t.Errorf("Digest(%q) succeeded, want an error", src)
		}
	}
}

// TestContextSocketsSkipped copies a context holding a unix socket and a
// FIFO: both are skipped, each with one warning naming it, and the copy
// goes on.
func TestContextSocketsSkipped(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, node{Name: "a.txt", Data: "a"}, node{Name: "run/"})
	l, err := net.Listen("unix", filepath.Join(dir, "run", "app.sock"))
	if err != nil {
		t.Skipf("cannot make a unix socket: %v", err)
	}
	defer l.Close()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var warnings []string
	c, err := Open(dir, WithWarn(func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, msg)
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Digest(ctx, "."); err != nil {
		t.Fatalf("Digest: %v", err)
	}
	root := t.TempDir()
	if err := c.Copy(ctx, ".", root, "/", CopyOptions{}); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if _, err := c.Digest(ctx, "run"); err != nil {
		t.Fatalf("Digest(run): %v", err)
	}
	want := `copy source "fifo" is a named pipe: only regular files, directories and links are copied`
	if err := c.Copy(ctx, "fifo", root, "/fifo", CopyOptions{}); err == nil || err.Error() != want {
		t.Errorf("Copy of the FIFO itself: %v, want %q", err, want)
	}
	if _, err := c.Digest(ctx, "fifo"); err == nil || err.Error() != want {
		t.Errorf("Digest of the FIFO itself: %v, want %q", err, want)
	}
	if _, err := c.Digest(ctx, "fif?"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Digest of a pattern matching only the FIFO: %v, want an error saying there is no such file", err)
	}
	sort.Strings(warnings)
	wantWarnings := []string{
		`skipping a named pipe "fifo" in ` + c.Dir() + `: only regular files, directories and links are copied`,
		`skipping a socket "run/app.sock" in ` + c.Dir() + `: only regular files, directories and links are copied`,
	}
	if d := cmp.Diff(wantWarnings, warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	for _, name := range []string{"run/app.sock", "fifo"} {
		if _, err := os.Lstat(filepath.Join(root, name)); err == nil {
			t.Errorf("%s was copied", name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "a.txt")); err != nil || string(b) != "a" {
		t.Errorf("a.txt: %q, %v", b, err)
	}
}

// unreadableEnv names the context directory of the unreadable-file check
// when this test binary runs it as an unprivileged user.
const unreadableEnv = "BUILDCTX_TEST_UNREADABLE"

// TestContextUnreadableFile digests and copies a context holding a file
// and a directory its user cannot read: both fail with an error naming
// the file and saying why. It runs as the user nobody, in a child
// process, since root reads everything.
func TestContextUnreadableFile(t *testing.T) {
	if dir := os.Getenv(unreadableEnv); dir != "" {
		unreadableChild(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the check as the user nobody")
	}
	base, err := os.MkdirTemp("", "unreadable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "ctx")
	makeTree(t, dir, node{Name: "ok.txt", Data: "ok"}, node{Name: "private.key", Data: "key", Mode: 0o600}, node{Name: "locked/"}, node{Name: "locked/inside", Data: "x"})
	if err := os.Chmod(filepath.Join(dir, "locked"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "private.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory is private to root: run a copy.
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(base, "buildctx.test")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestContextUnreadableFile$", "-test.v")
	cmd.Dir = base
	tmp := filepath.Join(base, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), unreadableEnv+"="+dir, "TMPDIR="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the check as nobody failed: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "--- PASS: TestContextUnreadableFile") {
		t.Errorf("the check as nobody did not run:\n%s", out)
	}
}

func unreadableChild(t *testing.T, dir string) {
	if os.Geteuid() == 0 {
		t.Fatal("the child runs as root")
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct{ src, name string }{
		{"private.key", "private.key"},
		{".", "locked"}, // the walk meets locked first
		{"locked", "locked"},
	} {
		_, err := c.Digest(ctx, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Digest(%q): %v, want an error naming %s and saying permission denied", tc.src, err, tc.name)
		}
		err = c.Copy(ctx, tc.src, t.TempDir(), "/x/", CopyOptions{UID: os.Getuid(), GID: os.Getgid()})
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Copy(%q): %v, want an error naming %s and saying permission denied", tc.src, err, tc.name)
		}
	}
	if err := c.Copy(ctx, "ok.txt", t.TempDir(), "/x/", CopyOptions{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Errorf("Copy(ok.txt): %v", err)
	}
}

// TestHashFileChanged hashes files that are not what the walk saw (as if
// swapped between the walk and the hashing): a FIFO fails at once instead
// of blocking, a link is not followed, and a file of another size fails.
func TestHashFileChanged(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, node{Name: "file", Data: "12345"}, node{Name: "link", Link: "file"})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := newDirRef(fd, dir)
	defer d.release()
	for _, tc := range []struct {
		name string
		lazy bool
		size int64
		want string
	}{
		{"fifo", true, 0, "no longer a regular file"},
		{"link", true, 0, "too many levels of symbolic links"},
		{"file", false, 4, "4 bytes, then 5"},
		{"file", true, 0, ""},
	} {
		t.Run(fmt.Sprintf("%s lazy=%v", tc.name, tc.lazy), func(t *testing.T) {
			j := hashJob{dir: d, name: tc.name, size: tc.size}
			if tc.lazy {
				j.fill = &statInfo{name: tc.name}
			}
			err := hashFile(sha256.New(), make([]byte, 4096), &j)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("hashFile: %v", err)
			case tc.want == "" && j.fill.Size() != 5:
				t.Errorf("hashFile filled in size %d, want 5", j.fill.Size())
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, tc.name))):
				t.Errorf("hashFile: %v, want an error naming %s and saying %q", err, tc.name, tc.want)
			}
		})
	}
}

// TestPlaceChanged copies a file that the walk saw as regular but is now
// a FIFO (swapped between the walk and the copy): the copy fails at once,
// naming it, instead of blocking on the FIFO.
func TestPlaceChanged(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, node{Name: "file", Data: "x"})
	fi, err := os.Lstat(filepath.Join(dir, "file"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCopier(t.TempDir(), CopyOptions{UID: os.Getuid(), GID: os.Getgid()})
	done := make(chan error, 1)
	go func() { done <- c.place(fifo, "fifo", entry{rel: "fifo", fi: fi}, "fifo") }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("copying a FIFO the walk saw as a regular file still blocks after 5s")
	}
	if want := "copy " + fifo + ": it changed while being copied (now a named pipe)"; err == nil || err.Error() != want {
		t.Errorf("place: %v, want %q", err, want)
	}
}
