package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// tarEntry is one entry of a test tar.
type tarEntry struct {
	name, link string
	typ        byte
	data       string
	mode       int64
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{
			Name:     e.name,
			Linkname: e.link,
			Typeflag: e.typ,
			Mode:     mode,
			Size:     int64(len(e.data)),
			ModTime:  time.Unix(1_700_000_000, 0),
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, data string) tarEntry { return tarEntry{name: name, typ: tar.TypeReg, data: data} }
func dir(name string) tarEntry        { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, link: target}
}
func hardlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeLink, link: target}
}

func TestExtractHostile(t *testing.T) {
	requireRoot(t)
	// Each case runs in base/root, next to base/sentinel (an empty dir that
	// must stay empty) and base/secret (a file that must not change).
	tests := []struct {
		name    string
		entries func(base string) []tarEntry
		wantErr string // empty: must succeed (the entry is contained)
		check   func(t *testing.T, root string)
	}{
		{
			name:    "dot dot",
			entries: func(string) []tarEntry { return []tarEntry{file("../sentinel/x", "pwned")} },
			wantErr: "escapes",
		},
		{
			name:    "absolute with dot dot",
			entries: func(string) []tarEntry { return []tarEntry{file("/abs/../../sentinel/x", "pwned")} },
			wantErr: "escapes",
		},
		{
			name:    "absolute",
			entries: func(string) []tarEntry { return []tarEntry{file("/etc/passwd", "contained")} },
			check: func(t *testing.T, root string) {
				if b, err := os.ReadFile(filepath.Join(root, "etc/passwd")); err != nil || string(b) != "contained" {
					t.Errorf("root/etc/passwd: %q, %v; want the entry contained in root", b, err)
				}
			},
		},
		{
			name: "file through absolute symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("a", filepath.Join(base, "sentinel")), file("a/passwd", "pwned")}
			},
			wantErr: "not a directory",
		},
		{
			name: "dir through absolute symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("a", filepath.Join(base, "sentinel")), dir("a/d/")}
			},
			wantErr: "not a directory",
		},
		{
			name: "file through dot dot symlink",
			entries: func(string) []tarEntry {
				return []tarEntry{symlink("up", ".."), file("up/sentinel/x", "pwned")}
			},
			wantErr: "not a directory",
		},
		{
			name: "dir replaced by symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{dir("d/"), symlink("d", filepath.Join(base, "sentinel")), file("d/x", "pwned")}
			},
			wantErr: "not a directory",
		},
		{
			name: "symlink replaced by file",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("a", filepath.Join(base, "sentinel")), file("a", "plain")}
			},
			check: func(t *testing.T, root string) {
				if b, err := os.ReadFile(filepath.Join(root, "a")); err != nil || string(b) != "plain" {
					t.Errorf("root/a: %q, %v; want the file replacing the symlink", b, err)
				}
			},
		},
		{
			name:    "hardlink out",
			entries: func(string) []tarEntry { return []tarEntry{hardlink("l", "../../etc/passwd")} },
			wantErr: "escapes",
		},
		{
			name: "hardlink through symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("s", base), hardlink("l", "s/secret")}
			},
			wantErr: "not a directory",
		},
		{
			name: "hardlink to symlink itself",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("s", filepath.Join(base, "secret")), hardlink("l", "s")}
			},
			check: func(t *testing.T, root string) {
				if target, err := os.Readlink(filepath.Join(root, "l")); err != nil || !strings.HasSuffix(target, "secret") {
					t.Errorf("root/l: %q, %v; want a link to the symlink", target, err)
				}
			},
		},
		{
			name:    "whiteout dot dot",
			entries: func(string) []tarEntry { return []tarEntry{file(".wh...", "")} },
			wantErr: "invalid whiteout",
		},
		{
			name:    "whiteout dot",
			entries: func(string) []tarEntry { return []tarEntry{file("d/.wh..", "")} },
			wantErr: "invalid whiteout",
		},
		{
			name: "whiteout through symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("s", base), file("s/.wh.secret", "")}
			},
			wantErr: "not a directory",
		},
		{
			name: "opaque through symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{symlink("s", filepath.Join(base, "sentinel")), file("s/.wh..wh..opq", "")}
			},
			wantErr: "not a directory",
		},
		{
			name:    "root replaced by file",
			entries: func(string) []tarEntry { return []tarEntry{file(".", "x")} },
			wantErr: "only be a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			sentinel, secret, root := filepath.Join(base, "sentinel"), filepath.Join(base, "secret"), filepath.Join(base, "root")
			if err := os.Mkdir(sentinel, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := Extract(context.Background(), bytes.NewReader(makeTar(t, tt.entries(base))), root)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Extract: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Extract: error %v, want one containing %q", err, tt.wantErr)
			}
			if names, _ := os.ReadDir(sentinel); len(names) != 0 {
				t.Errorf("sentinel dir next to root has %v, want it empty", names)
			}
			var st unix.Stat_t
			if err := unix.Lstat(secret, &st); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(secret); string(b) != "secret" || st.Nlink != 1 {
				t.Errorf("secret next to root changed: contents %q, %d links", b, st.Nlink)
			}
			ents, _ := os.ReadDir(base)
			if len(ents) != 3 {
				t.Errorf("base dir has %v, want only root, secret and sentinel", ents)
			}
			if tt.check != nil {
				tt.check(t, root)
			}
		})
	}
}

func TestExtractDuplicates(t *testing.T) {
	requireRoot(t)
	tarball := makeTar(t, []tarEntry{
		file("f", "first"),
		file("f", "second"),
		dir("d/"),
		file("d/a", "a"),
		{name: "d/", typ: tar.TypeDir, mode: 0o700},
		file("d/b", "b"),
		file("x", "file"),
		dir("x/"),
		dir("y/"),
		file("y/child", "c"),
		file("y", "file"),
		file("w", "whited out"),
		file(".wh.w", ""),
		file("n/.wh..wh..opq", ""),
		file("n/.wh..wh.plnk", ""),
		hardlink("h", "f"),
	})
	root := t.TempDir()
	if err := Extract(context.Background(), bytes.NewReader(tarball), root); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	got := dirManifest(t, root)
	for name, e := range got {
		e.Mtime = time.Time{}
		got[name] = e
	}
	sha := func(s string) string { return sum([]byte(s)) }
	want := manifest{
		"d":   {Type: "dir", Mode: 0o700},
		"d/a": {Type: "file", Mode: 0o644, Size: 1, SHA256: sha("a")},
		"d/b": {Type: "file", Mode: 0o644, Size: 1, SHA256: sha("b")},
		"f":   {Type: "file", Mode: 0o644, Size: 6, SHA256: sha("second")},
		"h":   {Type: "file", Mode: 0o644, Size: 6, SHA256: sha("second")},
		"n":   {Type: "dir", Mode: 0o755, Opaque: true},
		"w":   {Type: "char", Dev: "0:0"},
		"x":   {Type: "dir", Mode: 0o755},
		"y":   {Type: "file", Mode: 0o644, Size: 4, SHA256: sha("file")},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("extracted tree (-want +got):\n%s", d)
	}
}

func TestExtractCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, bytes.NewReader(makeTar(t, []tarEntry{file("f", "x")})), t.TempDir())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Extract with a canceled context: %v, want %v", err, context.Canceled)
	}
}

func TestExtractDrainsTrailingData(t *testing.T) {
	tarball := append(makeTar(t, []tarEntry{file("f", "x")}), make([]byte, 100_000)...)
	r := bytes.NewReader(tarball)
	if err := Extract(context.Background(), r, t.TempDir()); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if r.Len() != 0 {
		t.Errorf("Extract left %d bytes unread, want the reader drained", r.Len())
	}
}
