package regfile

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tree makes dir/ctx, holding one file of each kind and links in and
// out of it, beside dir/secret, and returns dir.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ctx, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "secret"), []byte("SECRET"), 0o600))
	must(os.WriteFile(filepath.Join(ctx, "sub", "file"), []byte("content"), 0o644))
	must(unix.Mkfifo(filepath.Join(ctx, "fifo"), 0o644))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(ctx, "sock"), Net: "unix"})
	must(err)
	t.Cleanup(func() { l.Close() })
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(ctx, "null"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	}
	for link, target := range map[string]string{
		"in":          "sub/file",
		"sub/up":      "../sub/file",
		"abs-out":     filepath.Join(dir, "secret"),
		"rel-out":     "../secret",
		"dir-out":     dir,
		"to-fifo":     "fifo",
		"abs-in":      filepath.Join(ctx, "sub", "file"), // absolute, even if inside
		"proc-escape": "/proc/self/root" + filepath.Join(dir, "secret"),
	} {
		must(os.Symlink(target, filepath.Join(ctx, link)))
	}
	return dir
}

func TestOpen(t *testing.T) {
	dir := tree(t)
	ctx := filepath.Join(dir, "ctx")
	cases := []struct {
		name string
		want string // the content, or "" for an error
		err  error  // what the error wraps
		kind string // Error.Kind
	}{
		{name: "sub/file", want: "content"},
		{name: "in", want: "content"},
		{name: "sub/up", want: "content"},
		{name: "./sub/../sub/file", want: "content"},
		{name: "abs-out", err: ErrOutside},
		{name: "rel-out", err: ErrOutside},
		{name: "dir-out/secret", err: ErrOutside},
		{name: "abs-in", err: ErrOutside},
		{name: "proc-escape", err: ErrOutside},
		{name: "../secret", err: ErrOutside},
		{name: filepath.Join(dir, "secret"), err: ErrOutside},
		{name: "fifo", err: ErrNotRegular, kind: "a named pipe"},
		{name: "to-fifo", err: ErrNotRegular, kind: "a named pipe"},
		{name: "sock", err: ErrNotRegular, kind: "a socket"},
		{name: "null", err: ErrNotRegular, kind: "a character device"},
		{name: "sub", err: ErrNotRegular, kind: "a directory"},
		{name: "missing", err: fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "null" && os.Geteuid() != 0 {
				t.Skip("making a device node needs root")
			}
			type res struct {
				b   []byte
				err error
			}
			done := make(chan res, 1)
			go func() {
				b, err := ReadFile(ctx, tc.name)
				done <- res{b, err}
			}()
			var r res
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("ReadFile(%q) still blocks after 5s", tc.name)
			}
			if tc.err == nil {
				if r.err != nil || string(r.b) != tc.want {
					t.Fatalf("ReadFile(%q) = %q, %v; want %q", tc.name, r.b, r.err, tc.want)
				}
				return
			}
			if !errors.Is(r.err, tc.err) {
				t.Fatalf("ReadFile(%q) = %q, %v; want an error wrapping %v", tc.name, r.b, r.err, tc.err)
			}
			msg := r.err.Error()
			if strings.Contains(msg, "SECRET") {
				t.Errorf("the error quotes the secret: %s", msg)
			}
			if !strings.Contains(msg, filepath.Join(ctx, tc.name)) && !strings.Contains(msg, tc.name) {
				t.Errorf("the error does not name %s: %s", tc.name, msg)
			}
			var e *Error
			if errors.As(r.err, &e) && tc.kind != "" && (e.Kind != tc.kind || !strings.Contains(msg, tc.kind)) {
				t.Errorf("kind %q in %q, want %q", e.Kind, msg, tc.kind)
			}
		})
	}
}

func TestOpenPath(t *testing.T) {
	dir := tree(t)
	ctx := filepath.Join(dir, "ctx")
	cases := []struct {
		name string
		want string
		err  error
	}{
		{name: "sub/file", want: "content"},
		{name: "abs-out", want: "SECRET"}, // the user named it: links are followed
		{name: "rel-out", want: "SECRET"},
		{name: "fifo", err: ErrNotRegular},
		{name: "to-fifo", err: ErrNotRegular},
		{name: "sock", err: ErrNotRegular},
		{name: "sub", err: ErrNotRegular},
		{name: "missing", err: fs.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadPath(filepath.Join(ctx, tc.name))
			if tc.err == nil {
				if err != nil || string(b) != tc.want {
					t.Fatalf("ReadPath(%q) = %q, %v; want %q", tc.name, b, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("ReadPath(%q) = %q, %v; want an error naming it wrapping %v", tc.name, b, err, tc.err)
			}
		})
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		mode fs.FileMode
		want string
	}{
		{0o644, "a regular file"},
		{fs.ModeDir | 0o755, "a directory"},
		{fs.ModeSymlink, "a symlink"},
		{fs.ModeNamedPipe, "a named pipe"},
		{fs.ModeSocket, "a socket"},
		{fs.ModeDevice | fs.ModeCharDevice, "a character device"},
		{fs.ModeDevice, "a block device"},
		{fs.ModeIrregular, "an irregular file"},
	} {
		if got := Kind(tc.mode); got != tc.want {
			t.Errorf("Kind(%v) = %q, want %q", tc.mode, got, tc.want)
		}
	}
}

// TestFS: FS reads like Open, and refuses names fs.FS does not allow.
func TestFS(t *testing.T) {
	dir := tree(t)
	fsys := FS(filepath.Join(dir, "ctx"))
	if b, err := fs.ReadFile(fsys, "in"); err != nil || string(b) != "content" {
		t.Errorf("ReadFile(in) = %q, %v", b, err)
	}
	for name, want := range map[string]error{"abs-out": ErrOutside, "fifo": ErrNotRegular, "../secret": fs.ErrInvalid, "/etc/passwd": fs.ErrInvalid} {
		if _, err := fs.ReadFile(fsys, name); !errors.Is(err, want) {
			t.Errorf("ReadFile(%s): %v, want %v", name, err, want)
		}
	}
}
