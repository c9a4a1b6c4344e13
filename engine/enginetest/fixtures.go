package enginetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/osthread"
)

// RequireRoot skips the test unless it runs as root (the engine needs
// real mounts and namespaces), or when -short is given.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for mounts, namespaces and cgroups (run the tests as root)")
	}
	if testing.Short() {
		t.Skip("skipping: real containers are not run with -short")
	}
}

// RepoRoot returns the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Busybox builds a busybox root filesystem with the repository's
// scripts/busybox-rootfs.sh in a new temp directory and returns it. It
// skips the test when busybox-static is not installed.
func Busybox(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Skip("skipping: busybox is not installed (apt-get install busybox-static)")
	}
	dir := filepath.Join(t.TempDir(), "busybox")
	script := filepath.Join(RepoRoot(t), "scripts", "busybox-rootfs.sh")
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		t.Fatalf("building busybox rootfs: %v\n%s", err, out)
	}
	return dir
}

// Entry is one file in a Tree listing.
type Entry struct {
	Mode   fs.FileMode
	UID    int
	GID    int
	Size   int64
	Digest string // sha256 of a regular file's content
	Link   string // symlink target
	Rdev   uint64
	Xattrs string // user.* xattrs, sorted "k=v;"
}

func (e Entry) String() string {
	return fmt.Sprintf("%v %d:%d size=%d %s link=%q rdev=%d %s", e.Mode, e.UID, e.GID, e.Size, e.Digest, e.Link, e.Rdev, e.Xattrs)
}

// Tree lists every path under dir (relative, "/"-separated) with its
// type, mode, owner, content digest, link target and user xattrs; not
// times. Paths under skip (relative) are left out.
func Tree(t testing.TB, dir string, skip ...string) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Mode: fi.Mode(), UID: int(st.Uid), GID: int(st.Gid)}
		switch {
		case fi.Mode().IsRegular():
			e.Size = fi.Size()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.Digest = hex.EncodeToString(h.Sum(nil))[:16]
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, _ = os.Readlink(p)
		case fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			e.Rdev = st.Rdev
		}
		e.Xattrs = userXattrs(p)
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return out
}

func userXattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var keys []string
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if strings.HasPrefix(k, "user.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := make([]byte, 4096)
		m, _ := unix.Lgetxattr(p, k, v)
		if m < 0 {
			m = 0
		}
		fmt.Fprintf(&b, "%s=%s;", k, v[:m])
	}
	return b.String()
}

// Mounted performs mounts on a temp directory in a private mount
// namespace of a dedicated OS thread, calls fn with that directory, and
// lets the namespace die with the thread: nothing can leak to the host.
// fn must do its work on the calling goroutine.
func Mounted(t testing.TB, mounts []engine.Mount, fn func(root string)) {
	t.Helper()
	root := t.TempDir()
	done := make(chan error, 1)
	// Never unlocked: the thread dies with the namespace.
	osthread.Own(func() {
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			done <- fmt.Errorf("making mounts private: %w", err)
			return
		}
		for _, m := range mounts {
			var flags uintptr
			var data []string
			for _, o := range m.Options {
				switch o {
				case "rbind":
					flags |= unix.MS_BIND | unix.MS_REC
				case "bind":
					flags |= unix.MS_BIND
				case "ro":
					flags |= unix.MS_RDONLY
				case "rw":
				default:
					data = append(data, o)
				}
			}
			typ := m.Type
			if typ == "bind" {
				typ, flags = "", flags|unix.MS_BIND|unix.MS_REC
			}
			if err := unix.Mount(m.Source, root, typ, flags, strings.Join(data, ",")); err != nil {
				done <- fmt.Errorf("mount %+v: %w", m, err)
				return
			}
		}
		fn(root)
		done <- unix.Unmount(root, unix.MNT_DETACH)
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
