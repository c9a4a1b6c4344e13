package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDigestTreeContent checks DigestTree's Tree, whose files are read on
// several goroutines, against the documented encoding computed in walk
// order on one: each entry's name, type and mode, owner, size, device,
// modification time, then its link target or content's sha256, then its
// extended attributes. Many small files, links, an attribute and a
// whiteout, so that the readers finish out of order.
func TestDigestTreeContent(t *testing.T) {
	dir := t.TempDir()
	for i := range 300 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("y", i*37)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d1/f001", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(dir, "d2", "f002"), "user.k", []byte("v"), 0); err != nil {
		t.Logf("no user.* attribute here (%v): the test goes on without it", err)
	}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(dir, "wh"), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1700000000, 0)
	if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := unix.NsecToTimespec(old.UnixNano())
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		t.Fatal(err)
	}

	want := sha256.New()
	var x xattrReader
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		field(want, rel, st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, st.Mtim.Nano())
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			field(want, "link", l)
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			field(want, "content", hex.EncodeToString(sum[:]))
		}
		names, err := x.names(p)
		if err != nil {
			return err
		}
		list := strings.Split(strings.TrimRight(names, "\x00"), "\x00")
		sort.Strings(list) // the order listxattr gives, for one attribute
		for _, name := range list {
			if name == "" {
				continue
			}
			v, err := x.get(p, name)
			if err != nil {
				return err
			}
			field(want, "xattr", name, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := DigestTree(context.Background(), dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if w := hashSum(want); got.Tree != w {
			t.Fatalf("DigestTree: Tree %s, want %s", got.Tree, w)
		}
		meta, err := DigestTree(context.Background(), dir, false)
		if err != nil {
			t.Fatal(err)
		}
		if meta.Meta != got.Meta || meta.Tree.Hex != "" {
			t.Fatalf("DigestTree without content: %+v, want Meta %s and no Tree", meta, got.Meta)
		}
	}
}

// TestDigestTreeWith: the sums of Known are taken for the files of those
// inodes instead of their contents (a wrong one changes the Tree, the
// right ones give DigestTree's), and Sums gets every regular file's.
func TestDigestTreeWith(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"a": "alpha", "sub/b": "bravo", "sub/c": ""}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, err := DigestTree(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	ino := func(name string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	sums := map[string][sha256.Size]byte{}
	got, err := DigestTreeWith(ctx, dir, TreeOptions{Known: map[uint64][sha256.Size]byte{ino("sub/b"): sha256.Sum256([]byte("bravo"))}, Sums: sums})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("with the right known sum: %v, want DigestTree's %v", got, want)
	}
	if len(sums) != len(files) {
		t.Errorf("Sums has %d files, want %d: %v", len(sums), len(files), sums)
	}
	for name, data := range files {
		if sums[name] != sha256.Sum256([]byte(data)) {
			t.Errorf("Sums[%s] = %x, want the sha256 of %q", name, sums[name], data)
		}
	}
	wrong, err := DigestTreeWith(ctx, dir, TreeOptions{Known: map[uint64][sha256.Size]byte{ino("sub/b"): sha256.Sum256([]byte("other"))}})
	if err != nil {
		t.Fatal(err)
	}
	if wrong.Tree == want.Tree || wrong.Meta != want.Meta {
		t.Errorf("with a wrong known sum: %v, want another Tree and the same Meta as %v", wrong, want)
	}
}
