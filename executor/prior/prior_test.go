package prior

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor/buildctx"
)

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func file(t, s, data string) File {
	return File{Placed: buildctx.Placed{Target: t, Source: s}, Sum: sha256.Sum256([]byte(data))}
}

// TestLink links a record's files from a layer directory: only regular
// files of wanted sources, each inode once, each target as last placed,
// with their parent directories as the layer has them; nothing a damaged
// record names outside the directories, nor what the layer does not hold
// as a file under directories.
func TestLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes directories owned by another user and trusted.* attributes")
	}
	from, upper := t.TempDir(), t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(from, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.txt", "a")
	write("sub/b.txt", "b")
	write("dir/x", "x")
	write("notdir", "n")
	if err := os.Link(filepath.Join(from, "a.txt"), filepath.Join(from, "dup.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(from, "l")); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(from, "sub")
	if err := unix.Lsetxattr(sub, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(sub, "trusted.overlay.origin", []byte("o"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(sub, "user.overlay.impure", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(sub, "user.note", []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sub, 1, 2); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(sub, 0o2750); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	if err := os.Chtimes(sub, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	r := Record{DiffID: v1.Hash{Algorithm: "sha256", Hex: sumOf("layer")}, Files: []File{
		file("sub/b.txt", "old-b", "b"), // placed again below: the last counts
		file("a.txt", "a.txt", "a"),
		file("dup.txt", "dup.txt", "a"), // a.txt's inode
		file("sub/b.txt", "b.txt", "b"),
		file("l", "l", "a"),
		file("dir", "dir", "d"),
		file("notdir/y", "y", "y"),
		file("missing", "missing", "m"),
		file("unwanted", "unwanted", "u"),
		file("../escape", "escape", "e"),
		file("/abs", "abs", "e"),
		file("sub/../a.txt", "a2", "a"),
	}}
	write("unwanted", "u")
	pre, err := Link(context.Background(), from, upper, r, func(s string) bool { return s != "unwanted" && s != "old-b" })
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for tg, p := range pre {
		targets = append(targets, tg)
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(from, tg), &st); err != nil {
			t.Fatal(err)
		}
		if p.Dev != st.Dev || p.Ino != st.Ino {
			t.Errorf("%s: linked inode %d, the layer's is %d", tg, p.Ino, st.Ino)
		}
	}
	slices.Sort(targets)
	if diff := cmp.Diff([]string{"a.txt", "sub/b.txt"}, targets); diff != "" {
		t.Errorf("linked (-want +got):\n%s", diff)
	}
	if want := sha256.Sum256([]byte("b")); pre["sub/b.txt"].Sum != want {
		t.Errorf("sub/b.txt has sum %x, want %x", pre["sub/b.txt"].Sum, want)
	}
	var got []string
	err = filepath.WalkDir(upper, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{".", "a.txt", "sub", "sub/b.txt"}, got); diff != "" {
		t.Errorf("upper holds (-want +got):\n%s", diff)
	}
	for _, p := range []string{filepath.Dir(upper) + "/escape", "/abs"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was made", p)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "sub"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o2750 || st.Uid != 1 || st.Gid != 2 || st.Mtim.Nano() != mtime.UnixNano() {
		t.Errorf("sub is %o %d:%d %v, want 2750 1:2 %v", st.Mode&0o7777, st.Uid, st.Gid, time.Unix(0, st.Mtim.Nano()).UTC(), mtime)
	}
	for name, want := range map[string]string{"trusted.overlay.opaque": "y", "user.note": "kept", "trusted.overlay.origin": "", "user.overlay.impure": ""} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(upper, "sub"), name, buf)
		if want == "" {
			if err == nil {
				t.Errorf("sub has %s, an attribute overlayfs gives its own directories", name)
			}
			continue
		}
		if err != nil || string(buf[:n]) != want {
			t.Errorf("sub has %s=%q (%v), want %q", name, buf[:max(n, 0)], err, want)
		}
	}
}

// TestStale finds a linked file that the copy neither kept nor replaced
// (what it kept, TestBuildIncrementalCopy covers).
func TestStale(t *testing.T) {
	upper := t.TempDir()
	for _, name := range []string{"linked", "left", "replaced"} {
		if err := os.WriteFile(filepath.Join(upper, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	linked := func(name string) buildctx.Prior {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, name), &st); err != nil {
			t.Fatal(err)
		}
		return buildctx.Prior{Dev: st.Dev, Ino: st.Ino}
	}
	pre := map[string]buildctx.Prior{"replaced": linked("replaced"), "gone": {Ino: 1}}
	// The copy replaces "replaced" (a new inode) and removes "gone".
	if err := os.Rename(filepath.Join(upper, "left"), filepath.Join(upper, "replaced")); err != nil {
		t.Fatal(err)
	}
	k := buildctx.NewKeep(upper, pre, nil)
	if Stale(upper, pre, k) {
		t.Error("stale with every linked file replaced or gone")
	}
	pre["linked"] = linked("linked")
	if !Stale(upper, pre, k) {
		t.Error("not stale with a linked file left as it was")
	}
}

// TestStore writes records and reads them back; a damaged or missing one
// reads as none; writing one removes those of layers the root no longer
// has.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	gone := v1.Hash{Algorithm: "sha256", Hex: sumOf("gone")}
	s := NewStore(filepath.Join(dir, "prior"), func() (*os.File, error) { return os.CreateTemp(dir, "tmp-*") },
		func(d v1.Hash) bool { return d != gone })
	k := Lineage(cache.KeyInput{Kind: "copy", Args: []string{".", "/app/"}})
	if _, ok := s.Read(k); ok {
		t.Error("a record read before any was written")
	}
	r := Record{DiffID: v1.Hash{Algorithm: "sha256", Hex: sumOf("layer")}, Files: []File{file("app/a", "a", "a"), file("app/sub/b c", "sub/b c", "b")}}
	if err := s.Write(k, r); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Read(k)
	if !ok {
		t.Fatal("the record written is not read back")
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(s.path(k))
	if err != nil {
		t.Fatal(err)
	}
	for _, damaged := range [][]byte{b[:len(b)-1], b[:len(recordMagic)+10], append([]byte("x"), b...)} {
		if err := os.WriteFile(s.path(k), damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.Read(k); ok {
			t.Errorf("a damaged record was read: %q", damaged)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d entries beside the records, want none (the temp file renamed)", len(ents)-1)
	}

	other := Lineage(cache.KeyInput{Kind: "copy", Args: []string{".", "/other/"}})
	third := Lineage(cache.KeyInput{Kind: "copy", Args: []string{".", "/third/"}})
	if err := s.Write(other, Record{DiffID: gone}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(k, r); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Read(other); ok {
		t.Error("the record of a layer the root no longer has was kept")
	}
	if err := s.Write(third, r); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Read(k); !ok {
		t.Error("writing a record removed another whose layer the root has")
	}
}

// TestLineage: a copy's lineage leaves out what it copies, and nothing
// else.
func TestLineage(t *testing.T) {
	base := cache.KeyInput{Kind: "copy", Args: []string{".", "/app/"}, Inputs: []v1.Hash{{Algorithm: "sha256", Hex: sumOf("1")}}}
	other := base
	other.Inputs = []v1.Hash{{Algorithm: "sha256", Hex: sumOf("2")}}
	if Lineage(base) != Lineage(other) {
		t.Error("copies of different contents have different lineages")
	}
	for name, in := range map[string]cache.KeyInput{
		"parent": {Parent: cache.Key{1}, Kind: "copy", Args: base.Args, Inputs: base.Inputs},
		"args":   {Kind: "copy", Args: []string{".", "/other/"}, Inputs: base.Inputs},
		"epoch":  {Kind: "copy", Args: base.Args, Inputs: base.Inputs, Epoch: "1"},
	} {
		if Lineage(in) == Lineage(base) {
			t.Errorf("another %s, the same lineage", name)
		}
	}
	if Lineage(base) == cache.ComputeKey(base) {
		t.Error("a lineage is its copy's cache key")
	}
}
