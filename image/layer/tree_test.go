package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is what the tests compare of one file system object.
type entry struct {
	Type   string
	Mode   uint32 // permission bits with setuid, setgid, sticky
	UID    int
	GID    int
	Size   int64
	SHA256 string
	Link   string
	Dev    string
	Mtime  time.Time
	Xattrs map[string]string // without trusted.overlay.*
	Opaque bool              // trusted.overlay.opaque=y
}

type manifest map[string]entry

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates devices, chowns files and sets trusted.* xattrs")
	}
}

// dirManifest describes the tree under root (root itself excluded).
func dirManifest(t testing.TB, root string) manifest {
	t.Helper()
	m := manifest{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{
			Mode:   st.Mode & 0o7777,
			UID:    int(st.Uid),
			GID:    int(st.Gid),
			Mtime:  time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
			Xattrs: testXattrs(t, p),
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type = "file"
			e.Size = st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.SHA256 = sum(b)
		case unix.S_IFDIR:
			e.Type = "dir"
			v := make([]byte, 8)
			n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", v)
			e.Opaque = err == nil && string(v[:n]) == "y"
		case unix.S_IFLNK:
			e.Type = "symlink"
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFCHR:
			e.Type = "char"
			e.Dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFBLK:
			e.Type = "block"
			e.Dev = fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			e.Type = "fifo"
		case unix.S_IFSOCK:
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return m
}

func testXattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	var m map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		v := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", p, name, err)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = string(v[:n])
	}
	return m
}

// tarManifest describes the entries of a tar; a hardlink gets the entry of
// its target, as it would have in a directory.
func tarManifest(t testing.TB, r io.Reader) manifest {
	t.Helper()
	m := manifest{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		name := path.Clean(hdr.Name)
		e := entry{
			Mode:  uint32(hdr.Mode) & 0o7777,
			UID:   hdr.Uid,
			GID:   hdr.Gid,
			Mtime: hdr.ModTime,
		}
		for k, v := range hdr.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[x] = v
			}
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			e.Type = "file"
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read tar entry %s: %v", name, err)
			}
			e.Size = int64(len(b))
			e.SHA256 = sum(b)
		case tar.TypeLink:
			target, ok := m[path.Clean(hdr.Linkname)]
			if !ok {
				t.Fatalf("hardlink %s to %s: target not seen before", name, hdr.Linkname)
			}
			e = target
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeSymlink:
			e.Type = "symlink"
			e.Link = hdr.Linkname
		case tar.TypeChar:
			e.Type = "char"
			e.Dev = fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
		case tar.TypeBlock:
			e.Type = "block"
			e.Dev = fmt.Sprintf("%d:%d", hdr.Devmajor, hdr.Devminor)
		case tar.TypeFifo:
			e.Type = "fifo"
		default:
			t.Fatalf("tar entry %s: unexpected type %q", name, hdr.Typeflag)
		}
		m[name] = e
	}
}

// tarNames lists the entry names of a tar in order.
func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fixture describes one file system object the tests create.
type fixture struct {
	name   string
	kind   string // file, dir, symlink, hardlink, fifo, char
	data   string // contents, or the link target
	mode   uint32
	uid    int
	xattrs map[string]string
	mtime  time.Time // zero: a default with nanoseconds
}

var baseTime = time.Unix(1_700_000_000, 123_456_789)

// vfsCapNetBind is a security.capability value (VFS_CAP_REVISION_2,
// effective) granting CAP_NET_BIND_SERVICE.
var vfsCapNetBind = string([]byte{
	0x01, 0x00, 0x00, 0x02, // magic_etc
	0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, // permitted, inheritable (low)
	0, 0, 0, 0, 0, 0, 0, 0, // permitted, inheritable (high)
})

// lowerFixture is the base tree of the tests. It needs root.
func lowerFixture() []fixture {
	return []fixture{
		{name: "a", kind: "dir", mode: 0o755, xattrs: map[string]string{"user.dir": "d"}},
		{name: "a/b", kind: "dir", mode: 0o750},
		{name: "a/b/deep.txt", kind: "file", data: "deep", mode: 0o644},
		{name: "a/b/keep.txt", kind: "file", data: "keep", mode: 0o644},
		{name: "a/file.txt", kind: "file", data: "hello", mode: 0o644, xattrs: map[string]string{"user.foo": "bar"}},
		{name: "a/hard", kind: "hardlink", data: "a/file.txt"},
		{name: "a/mod.txt", kind: "file", data: "modify me", mode: 0o600},
		{name: "big.bin", kind: "file", data: strings.Repeat("0123456789abcdef", 20_000), mode: 0o644},
		{name: "del", kind: "dir", mode: 0o755},
		{name: "del/x", kind: "file", data: "x", mode: 0o644},
		{name: "del/y", kind: "dir", mode: 0o755},
		{name: "del/y/z", kind: "file", data: "z", mode: 0o644},
		{name: "empty", kind: "file", mode: 0o644},
		{name: "exec", kind: "file", data: "#!/bin/sh\n", mode: 0o755},
		{name: "fifo", kind: "fifo", mode: 0o640},
		{name: "null", kind: "char", data: "1:3", mode: 0o666},
		{name: "opq", kind: "dir", mode: 0o755},
		{name: "opq/old", kind: "file", data: "old", mode: 0o644},
		{name: "owned", kind: "file", data: "mine", mode: 0o640, uid: 1000},
		{name: "ping", kind: "file", data: "ELF", mode: 0o4755, uid: 1000,
			xattrs: map[string]string{"security.capability": vfsCapNetBind}},
		{name: "repl", kind: "dir", mode: 0o755},
		{name: "repl/child", kind: "file", data: "c", mode: 0o644},
		{name: "same.txt", kind: "file", data: "same size", mode: 0o644, mtime: time.Unix(1_600_000_000, 0)},
		{name: "sgid", kind: "dir", mode: 0o2775},
		{name: "link", kind: "symlink", data: "a/file.txt"},
		{name: "abs", kind: "symlink", data: "/etc/passwd"},
		{name: "tmp", kind: "dir", mode: 0o1777},
		{name: "x.txt", kind: "file", data: "x", mode: 0o644, xattrs: map[string]string{"user.x": "1"}},
	}
}

// build creates the fixtures under root, then sets their mtimes (deepest
// first, so that creating children does not change them).
func build(t testing.TB, root string, fixtures []fixture) {
	t.Helper()
	for _, f := range fixtures {
		p := filepath.Join(root, f.name)
		var err error
		switch f.kind {
		case "dir":
			err = os.Mkdir(p, 0o700)
		case "file":
			err = os.WriteFile(p, []byte(f.data), 0o600)
		case "symlink":
			err = os.Symlink(f.data, p)
		case "hardlink":
			err = os.Link(filepath.Join(root, f.data), p)
			if err != nil {
				t.Fatal(err)
			}
			continue
		case "fifo":
			err = unix.Mkfifo(p, 0o600)
		case "char":
			var maj, min uint32
			fmt.Sscanf(f.data, "%d:%d", &maj, &min)
			err = unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(maj, min)))
		default:
			t.Fatalf("fixture %s: unknown kind %q", f.name, f.kind)
		}
		if err != nil {
			t.Fatalf("create fixture: %v", err)
		}
		if err := unix.Lchown(p, f.uid, f.uid); err != nil {
			t.Fatal(err)
		}
		if f.kind != "symlink" {
			if err := unix.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range f.xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				t.Fatalf("set xattr %s on %s: %v", k, p, err)
			}
		}
	}
	for i := len(fixtures) - 1; i >= 0; i-- {
		f := fixtures[i]
		if f.kind == "hardlink" {
			continue
		}
		mt := f.mtime
		if mt.IsZero() {
			mt = baseTime.Add(time.Duration(i) * time.Second)
		}
		setTime(t, filepath.Join(root, f.name), mt)
	}
	setTime(t, root, baseTime)
}

func setTime(t testing.TB, p string, mt time.Time) {
	t.Helper()
	ts := unix.NsecToTimespec(mt.UnixNano())
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatalf("set mtime of %s: %v", p, err)
	}
}
