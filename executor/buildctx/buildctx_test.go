package buildctx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// requireRoot skips tests that set file owners, which needs root.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: setting a file's owner to another user needs CAP_CHOWN")
	}
}

// node is a file to make: a directory if Name ends in "/", a link if Link
// is set, else a regular file with Data.
type node struct {
	Name string
	Data string
	Link string
	Mode os.FileMode // default 0644 for files, 0755 for directories
}

// makeTree makes nodes under dir, parents first, and sets every mtime to
// a fixed time.
func makeTree(t testing.TB, dir string, nodes ...node) {
	t.Helper()
	for _, n := range nodes {
		p := filepath.Join(dir, n.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(n.Name, "/"):
			mode := n.Mode
			if mode == 0 {
				mode = 0o755
			}
			if err := os.MkdirAll(p, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		case n.Link != "":
			if err := os.Symlink(n.Link, p); err != nil {
				t.Fatal(err)
			}
		default:
			mode := n.Mode
			if mode == 0 {
				mode = 0o644
			}
			if err := os.WriteFile(p, []byte(n.Data), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	fixed := time.Unix(1700000000, 0)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return setTimes(p, fixed)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listTree describes every file under dir: "d 0755", "f 0644 content" or
// "l target", by slash-separated relative path.
func listTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case fi.IsDir():
			out[rel] = fmt.Sprintf("d %04o", modeBits(fi.Mode()))
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "l " + l
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("f %04o %s", modeBits(fi.Mode()), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testContext makes the context the Resolve and Copy tests share.
func testContext(t *testing.T) *Context {
	t.Helper()
	dir := t.TempDir()
	makeTree(t, dir,
		node{Name: ".kilnignore", Data: "*.key\nlogs\n!logs/keep.log\nbuild\n"},
		node{Name: ".dockerignore", Data: "a.txt\n"}, // shadowed by .kilnignore
		node{Name: "a.txt", Data: "a"},
		node{Name: "b.txt", Data: "b"},
		node{Name: "c.md", Data: "c"},
		node{Name: "secret.key", Data: "k"},
		node{Name: "src/x.go", Data: "x"},
		node{Name: "src/y.go", Data: "y", Mode: 0o755},
		node{Name: "src/sub/z.go", Data: "z"},
		node{Name: "src/link", Link: "x.go"},
		node{Name: "src/dangling", Link: "nowhere"},
		node{Name: "bad/dangling", Link: "/nowhere/at/all"},
		node{Name: "logs/keep.log", Data: "kept"},
		node{Name: "logs/other.log", Data: "ignored"},
		node{Name: "build/out.bin", Data: "ignored"},
		node{Name: "link-in", Link: "src"},
		node{Name: "abs-in", Link: filepath.Join(dir, "src")},
		node{Name: "bad/out-abs", Link: "/etc"},
		node{Name: "bad/out-rel", Link: "../../../../../../.."},
		node{Name: "bad/passwd", Link: "/etc/passwd"},
	)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResolve(t *testing.T) {
	c := testContext(t)
	outside := func(src string) string {
		return fmt.Sprintf("copy source %q is outside the build context %s", src, c.Dir())
	}
	missing := func(src string) string {
		return fmt.Sprintf("copy source %q: no such file in the build context", src)
	}
	for _, tc := range []struct {
		src     string
		want    []string
		wantErr string
	}{
		{src: "a.txt", want: []string{"a.txt"}},
		{src: "./a.txt", want: []string{"a.txt"}},
		{src: "src/../a.txt", want: []string{"a.txt"}},
		{src: ".", want: []string{"."}},
		{src: "*.txt", want: []string{"a.txt", "b.txt"}},
		{src: "?.md", want: []string{"c.md"}},
		{src: "src", want: []string{"src"}},
		{src: "src/", want: []string{"src"}},
		{src: "src/*.go", want: []string{"src/x.go", "src/y.go"}},
		{src: "src/*", want: []string{"src/link", "src/sub", "src/x.go", "src/y.go"}},
		{src: "s*/s*/*.go", want: []string{"src/sub/z.go"}},
		{src: "link-in/x.go", want: []string{"link-in/x.go"}},
		// A link's absolute target starts at the context's root, as in
		// BuildKit: this one names the host's path of the context.
		{src: "abs-in/sub", wantErr: missing("abs-in/sub")},
		{src: "link-in", want: []string{"link-in"}},
		{src: "logs", want: []string{"logs"}},            // excluded, but an exception keeps keep.log
		{src: "logs/*", want: []string{"logs/keep.log"}}, // !exception
		{src: "logs/keep.log", want: []string{"logs/keep.log"}},
		{src: "logs/other.log", wantErr: missing("logs/other.log")},
		{src: "secret.key", wantErr: missing("secret.key")},
		{src: "*.key", wantErr: missing("*.key")},
		{src: "build", wantErr: missing("build")},
		{src: "build/out.bin", wantErr: missing("build/out.bin")},
		{src: "nothing", wantErr: missing("nothing")},
		{src: "src/dangling", wantErr: missing("src/dangling")},
		{src: "a.txt/x", wantErr: missing("a.txt/x")},
		{src: "*.none", wantErr: missing("*.none")},
		{src: "../../etc/passwd", wantErr: outside("../../etc/passwd")},
		{src: "/etc/passwd", wantErr: outside("/etc/passwd")},
		{src: "src/../../x", wantErr: outside("src/../../x")},
		{src: "..", wantErr: outside("..")},
		// Links leading out resolve inside the context: /etc is the
		// context's etc, and ".." stops at its root.
		{src: "bad/out-abs/passwd", wantErr: missing("bad/out-abs/passwd")},
		{src: "bad/out-abs", wantErr: missing("bad/out-abs")},
		{src: "bad/out-rel", want: []string{"bad/out-rel"}},
		{src: "bad/passwd", wantErr: missing("bad/passwd")},
		{src: "bad/*", want: []string{"bad/out-rel"}},
		{src: "bad/dangling", wantErr: missing("bad/dangling")},
		// A backslash escapes; alone it is no wildcard.
		{src: `a\.txt`, wantErr: missing(`a\.txt`)},
		{src: `\a.txt`, wantErr: missing(`\a.txt`)},
		{src: `\*.txt`, wantErr: missing(`\*.txt`)},
		{src: `[a].t\xt`, want: []string{"a.txt"}},
		{src: "[", wantErr: "syntax error in pattern"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := c.Resolve(tc.src)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Resolve(%q) = %v, %v; want error %q", tc.src, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve(%q) (-want +got):\n%s", tc.src, diff)
			}
		})
	}
}

func TestIgnoreFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes []node
		want  []string
	}{
		{"none", nil, []string{"a.txt", "b.txt"}},
		{".dockerignore", []node{{Name: ".dockerignore", Data: "a.txt\n"}}, []string{"b.txt"}},
		{".kilnignore wins", []node{{Name: ".dockerignore", Data: "a.txt\n"}, {Name: ".kilnignore", Data: "b.txt\n"}}, []string{"a.txt"}},
		{"exception", []node{{Name: ".kilnignore", Data: "*.txt\n!b.txt\n"}}, []string{"b.txt"}},
		{"leading slash and comments", []node{{Name: ".kilnignore", Data: "# a comment\n/a.txt\n"}}, []string{"b.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, dir, append(tc.nodes, node{Name: "a.txt", Data: "a"}, node{Name: "b.txt", Data: "b"})...)
			c, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Resolve("*.txt")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve(*.txt) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	ctx := context.Background()
	base := []node{
		{Name: ".kilnignore", Data: "**/*.log\n"},
		{Name: "a.txt", Data: "alpha"},
		{Name: "dir/b.txt", Data: "bravo"},
		{Name: "dir/run.sh", Data: "#!/bin/sh\n", Mode: 0o755},
		{Name: "dir/empty/"},
		{Name: "dir/link", Link: "b.txt"},
	}
	digest := func(t *testing.T, dir, src string) string {
		t.Helper()
		c, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		h, err := c.Digest(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		return h.String()
	}
	ref := t.TempDir()
	makeTree(t, ref, base...)
	for _, src := range []string{".", "dir", "a.txt", "*.txt"} {
		if a, b := digest(t, ref, src), digest(t, ref, src); a != b {
			t.Errorf("Digest(%q) is not stable: %s then %s", src, a, b)
		}
	}
	if digest(t, ref, "a.txt") == digest(t, ref, "dir/b.txt") {
		t.Error("two files with different contents and names have one digest")
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}{
		{"nothing", func(t *testing.T, dir string) {}, true},
		{"touch a file", func(t *testing.T, dir string) {
			now := time.Now()
			if err := os.Chtimes(filepath.Join(dir, "dir/b.txt"), now, now); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"touch a directory", func(t *testing.T, dir string) {
			now := time.Now()
			if err := os.Chtimes(filepath.Join(dir, "dir"), now, now); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"chmod the context directory", func(t *testing.T, dir string) {
			if err := os.Chmod(dir, 0o750); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"new ignored file", func(t *testing.T, dir string) { makeTree(t, dir, node{Name: "dir/x.log", Data: "log"}) }, true},
		{"chown", func(t *testing.T, dir string) {
			requireRoot(t)
			if err := os.Lchown(filepath.Join(dir, "dir/b.txt"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"changed byte", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "dir/b.txt"), []byte("bravO"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"chmod", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "dir/b.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"setuid", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "dir/run.sh"), 0o755|os.ModeSetuid); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"chmod a subdirectory", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "dir/empty"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"rename", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "dir/b.txt"), filepath.Join(dir, "dir/c.txt")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"new file", func(t *testing.T, dir string) { makeTree(t, dir, node{Name: "dir/new", Data: ""}) }, false},
		{"new empty directory", func(t *testing.T, dir string) { makeTree(t, dir, node{Name: "dir/new/"}) }, false},
		{"file becomes link", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "a.txt"))
			makeTree(t, dir, node{Name: "a.txt", Link: "alpha"})
		}, false},
		{"link target", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "dir/link"))
			makeTree(t, dir, node{Name: "dir/link", Link: "run.sh"})
		}, false},
		{"removed file", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "dir/run.sh")); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir() // a new place: the same files there have the same digest
			makeTree(t, dir, base...)
			tc.change(t, dir)
			got, want := digest(t, dir, "."), digest(t, ref, ".")
			if (got == want) != tc.same {
				t.Errorf("after %s, digest %s, before %s; want same=%v", tc.name, got, want, tc.same)
			}
		})
	}
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	c := testContext(t)
	mode0600 := os.FileMode(0o600)
	for _, tc := range []struct {
		name     string
		root     []node // made in the root first
		src, dst string
		opts     CopyOptions
		want     map[string]string // the root afterwards
		wantErr  string
	}{
		{name: "file into dir/", src: "a.txt", dst: "/app/", want: map[string]string{
			"app": "d 0755", "app/a.txt": "f 0644 a",
		}},
		{name: "file to a new name", src: "a.txt", dst: "/app/renamed.txt", want: map[string]string{
			"app": "d 0755", "app/renamed.txt": "f 0644 a",
		}},
		{name: "file into an existing dir", root: []node{{Name: "app/", Mode: 0o700}}, src: "a.txt", dst: "/app", want: map[string]string{
			"app": "d 0700", "app/a.txt": "f 0644 a",
		}},
		{name: "file replaces a file", root: []node{{Name: "app/a.txt", Data: "old"}}, src: "a.txt", dst: "/app/", want: map[string]string{
			"app": "d 0755", "app/a.txt": "f 0644 a",
		}},
		{name: "relative dst", src: "a.txt", dst: "app/", want: map[string]string{
			"app": "d 0755", "app/a.txt": "f 0644 a",
		}},
		{name: "nested parents", src: "b.txt", dst: "/a/b/c/", want: map[string]string{
			"a": "d 0755", "a/b": "d 0755", "a/b/c": "d 0755", "a/b/c/b.txt": "f 0644 b",
		}},
		{name: "dir contents, links kept", src: "src", dst: "/app", want: map[string]string{
			"app": "d 0755", "app/x.go": "f 0644 x", "app/y.go": "f 0755 y", "app/sub": "d 0755", "app/sub/z.go": "f 0644 z",
			"app/link": "l x.go", "app/dangling": "l nowhere",
		}},
		{name: "dir contents through a link", src: "link-in/sub", dst: "/", want: map[string]string{
			"z.go": "f 0644 z",
		}},
		{name: "dir keeps an existing dst", root: []node{{Name: "app/", Mode: 0o711}, {Name: "app/old", Data: "o"}}, src: "src/sub", dst: "/app", want: map[string]string{
			"app": "d 0711", "app/old": "f 0644 o", "app/z.go": "f 0644 z",
		}},
		{name: "named link is followed", src: "src/link", dst: "/bin/", want: map[string]string{
			"bin": "d 0755", "bin/link": "f 0644 x",
		}},
		{name: "ignored files are not copied", src: "logs", dst: "/logs", want: map[string]string{
			"logs": "d 0755", "logs/keep.log": "f 0644 kept",
		}},
		{name: "glob into dir/", src: "*.txt", dst: "/t/", want: map[string]string{
			"t": "d 0755", "t/a.txt": "f 0644 a", "t/b.txt": "f 0644 b",
		}},
		{name: "glob of one to a file", src: "*.md", dst: "/readme", want: map[string]string{
			"readme": "f 0644 c",
		}},
		{name: "glob of many needs a dir", src: "*.txt", dst: "/t", wantErr: "2 files match, so the destination must be a directory"},
		{name: "mode", src: "src", dst: "/app/", opts: CopyOptions{Mode: &mode0600}, want: map[string]string{
			"app": "d 0755", "app/x.go": "f 0600 x", "app/y.go": "f 0600 y", "app/sub": "d 0755", "app/sub/z.go": "f 0600 z",
			"app/link": "l x.go", "app/dangling": "l nowhere",
		}},
		{name: "a link to a dir in the way of a dir is followed", root: []node{{Name: "usr/lib/"}, {Name: "lib", Link: "/usr/lib"}}, src: "src", dst: "/", want: map[string]string{
			"usr": "d 0755", "usr/lib": "d 0755", "lib": "l /usr/lib", "sub": "d 0755", "sub/z.go": "f 0644 z",
			"x.go": "f 0644 x", "y.go": "f 0755 y", "link": "l x.go", "dangling": "l nowhere",
		}},
		{name: "a link in the way of a file is replaced", root: []node{{Name: "app/a.txt", Link: "/etc/passwd"}}, src: "a.txt", dst: "/app/", want: map[string]string{
			"app": "d 0755", "app/a.txt": "f 0644 a",
		}},
		{name: "a dir in the way of a file", root: []node{{Name: "app/a.txt/"}}, src: "a.txt", dst: "/app/", wantErr: "a file cannot replace it"},
		{name: "a file in the way of a dir", root: []node{{Name: "app", Data: "file"}}, src: "src", dst: "/app", wantErr: "a directory cannot replace a file"},
		{name: "outside", src: "../../etc/passwd", dst: "/", wantErr: "is outside the build context"},
		{name: "dst with ..", src: "a.txt", dst: "/../../../a", want: map[string]string{"a": "f 0644 a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			makeTree(t, root, tc.root...)
			if tc.opts.UID == 0 && tc.opts.GID == 0 && os.Geteuid() != 0 {
				tc.opts.UID, tc.opts.GID = os.Geteuid(), os.Getegid()
			}
			err := c.Copy(ctx, tc.src, root, tc.dst, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Copy: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, listTree(t, root)); diff != "" {
				t.Errorf("root after Copy(%q, %q) (-want +got):\n%s", tc.src, tc.dst, diff)
			}
		})
	}
}

func TestCopyKeepsTimes(t *testing.T) {
	ctx := context.Background()
	c := testContext(t)
	root := t.TempDir()
	if err := c.Copy(ctx, "src", root, "/app", CopyOptions{UID: os.Geteuid(), GID: os.Getegid()}); err != nil {
		t.Fatal(err)
	}
	want := time.Unix(1700000000, 0)
	for _, p := range []string{"app/x.go", "app/sub", "app/sub/z.go", "app/link"} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(want) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), want)
		}
	}
}

func TestCopyOwner(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	c := testContext(t)
	root := t.TempDir()
	if err := c.Copy(ctx, "src", root, "/new/app", CopyOptions{UID: 1000, GID: 1001}); err != nil {
		t.Fatal(err)
	}
	if err := c.Copy(ctx, "a.txt", root, "/new/app/sub/", CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range []string{"new", "new/app", "new/app/x.go", "new/app/sub", "new/app/sub/z.go", "new/app/link", "new/app/sub/a.txt"} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		got[p] = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	want := map[string]string{
		"new": "1000:1001", "new/app": "1000:1001", "new/app/x.go": "1000:1001", "new/app/sub": "1000:1001",
		"new/app/sub/z.go": "1000:1001", "new/app/link": "1000:1001", "new/app/sub/a.txt": "0:0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("owners (-want +got):\n%s", diff)
	}
}

// TestDstStaysInRoot: links in the root that point to / or climb out with
// .. lead back into the root, never to the host.
func TestDstStaysInRoot(t *testing.T) {
	ctx := context.Background()
	c := testContext(t)
	host := t.TempDir() // stands for the host's /
	sentinel := filepath.Join(host, "sentinel")
	if err := os.WriteFile(sentinel, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		link string // root/escape points here
		dst  string
		want string // where the file lands, relative to the root
	}{
		{"absolute link to /", "/", "/escape" + host + "/", strings.TrimPrefix(host, "/") + "/a.txt"},
		{"absolute link to the host dir", host, "/escape/", strings.TrimPrefix(host, "/") + "/a.txt"},
		{"relative link climbing out", "../../../../../../../../../..", "/escape" + host + "/sentinel", strings.TrimPrefix(host, "/") + "/sentinel"},
		// The link is followed inside the root, as BuildKit does.
		{"link to the host file", sentinel, "/escape", strings.TrimPrefix(sentinel, "/")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			makeTree(t, root, node{Name: "escape", Link: tc.link})
			opts := CopyOptions{UID: os.Geteuid(), GID: os.Getegid()}
			if err := c.Copy(ctx, "a.txt", root, tc.dst, opts); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, tc.want)); err != nil || string(b) != "a" {
				t.Errorf("%s in the root: %q, %v; want the copied file", tc.want, b, err)
			}
			if err := WriteFile(root, tc.dst+"x", []byte("w"), opts); err != nil && !strings.Contains(err.Error(), "directory") {
				t.Errorf("WriteFile: %v", err)
			}
			if b, err := os.ReadFile(sentinel); err != nil || string(b) != "host" {
				t.Errorf("the host's sentinel: %q, %v; want it untouched", b, err)
			}
			if entries, _ := os.ReadDir(host); len(entries) != 1 {
				t.Errorf("files appeared outside the root: %v", entries)
			}
		})
	}
}

func TestCopyTree(t *testing.T) {
	ctx := context.Background()
	stage := t.TempDir()
	makeTree(t, stage,
		node{Name: "usr/lib/libx.so", Data: "lib", Mode: 0o755},
		node{Name: "usr/lib/libx.so.1", Link: "libx.so"},
		node{Name: "lib", Link: "/usr/lib"},
		node{Name: "out/app", Data: "binary", Mode: 0o755},
		node{Name: "out/up", Link: "../../../../.."},
	)
	for _, tc := range []struct {
		name, src, dst string
		want           map[string]string
		wantErr        string
	}{
		{name: "file", src: "/out/app", dst: "/usr/local/bin/", want: map[string]string{
			"usr": "d 0755", "usr/local": "d 0755", "usr/local/bin": "d 0755", "usr/local/bin/app": "f 0755 binary",
		}},
		{name: "through an absolute link", src: "/lib/libx.so", dst: "/l", want: map[string]string{"l": "f 0755 lib"}},
		{name: "dir", src: "/lib", dst: "/l", want: map[string]string{
			"l": "d 0755", "l/libx.so": "f 0755 lib", "l/libx.so.1": "l libx.so",
		}},
		{name: "glob", src: "/usr/lib/*.so", dst: "/l/", want: map[string]string{"l": "d 0755", "l/libx.so": "f 0755 lib"}},
		{name: "climbing out stays in the stage", src: "/out/up/out/app", dst: "/app", want: map[string]string{"app": "f 0755 binary"}},
		{name: "dotdot stays in the stage", src: "/../../../etc/passwd", dst: "/p", wantErr: `copy source "/../../../etc/passwd": no such file in ` + stage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			err := CopyTree(ctx, stage, tc.src, root, tc.dst, CopyOptions{UID: os.Geteuid(), GID: os.Getegid()})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("CopyTree: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, listTree(t, root)); diff != "" {
				t.Errorf("root after CopyTree(%q, %q) (-want +got):\n%s", tc.src, tc.dst, diff)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, node{Name: "etc/"}, node{Name: "etc/motd", Link: "/etc/passwd"}, node{Name: "dir/"})
	opts := CopyOptions{UID: os.Geteuid(), GID: os.Getegid()}
	if err := WriteFile(root, "/etc/app/conf.yml", []byte("a: 1\n"), opts); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o600)
	opts.Mode = &mode
	if err := WriteFile(root, "/etc/motd", []byte("hi\n"), opts); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(root, "/dir", nil, opts); err == nil {
		t.Error("WriteFile over a directory: no error")
	}
	want := map[string]string{
		// A link at the destination is written through, inside the
		// root, and kept (as BuildKit does).
		"etc": "d 0755", "etc/app": "d 0755", "etc/app/conf.yml": "f 0644 a: 1\n", "dir": "d 0755",
		"etc/motd": "l /etc/passwd", "etc/passwd": "f 0600 hi\n",
	}
	if diff := cmp.Diff(want, listTree(t, root)); diff != "" {
		t.Errorf("root after WriteFile (-want +got):\n%s", diff)
	}
}

func TestCancel(t *testing.T) {
	c := testContext(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Digest(ctx, "src"); !errors.Is(err, context.Canceled) {
		t.Errorf("Digest with a cancelled context: %v, want context.Canceled", err)
	}
	if err := c.Copy(ctx, "src", t.TempDir(), "/", CopyOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Copy with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestOpenIgnoreFileConfined: an ignore file that is a FIFO, a socket or
// a link out of the context fails Open at once, naming it, without being
// read; one linked inside the context is read.
func TestOpenIgnoreFileConfined(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("[SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(p string) error
		want string // in the error; "" for none
	}{
		{".dockerignore fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }, ".dockerignore is a named pipe"},
		{".kilnignore fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }, ".kilnignore is a named pipe"},
		{".dockerignore socket", func(p string) error {
			l, err := net.Listen("unix", p)
			if err == nil {
				t.Cleanup(func() { l.Close() })
			}
			return err
		}, ".dockerignore is a socket"},
		{".kilnignore link outside", func(p string) error { return os.Symlink(secret, p) }, ".kilnignore is a symlink to a path outside"},
		{".dockerignore link inside", func(p string) error { return os.Symlink("ignore/patterns", p) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeTree(t, dir, node{Name: "ignore/patterns", Data: "b.txt\n"}, node{Name: "a.txt", Data: "a"}, node{Name: "b.txt", Data: "b"})
			if err := tc.make(filepath.Join(dir, strings.Fields(tc.name)[0])); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			var c *Context
			go func() {
				var err error
				c, err = Open(dir)
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Open still blocks after 5s")
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
					t.Fatalf("Open: error = %v, want one saying %q without the file's content", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Resolve("b.txt"); err == nil {
				t.Errorf("b.txt is not ignored by the linked ignore file")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir, node{Name: "file", Data: "x"}, node{Name: "bad/.kilnignore", Data: "[\n"})
	for _, p := range []string{filepath.Join(dir, "file"), filepath.Join(dir, "missing")} {
		if _, err := Open(p); err == nil {
			t.Errorf("Open(%s): no error", p)
		}
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir() != dir {
		real, _ := filepath.EvalSymlinks(dir)
		if c.Dir() != real {
			t.Errorf("Dir() = %s, want %s", c.Dir(), dir)
		}
	}
}
