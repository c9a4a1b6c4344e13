package buildctx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestDigestFiles(t *testing.T) {
	dir := t.TempDir()
	makeTree(t, dir,
		node{Name: "src/", Mode: 0o755},
		node{Name: "src/a.txt", Data: "a"},
		node{Name: "src/sub/", Mode: 0o700},
		node{Name: "src/sub/b.sh", Data: "b", Mode: 0o755},
		node{Name: "src/l", Link: "a.txt"},
		node{Name: "src/skip.log", Data: "ignored"},
		node{Name: "top.txt", Data: "top"},
		node{Name: ".kilnignore", Data: "**/*.log\n"},
	)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		src  string
		want []File
	}{
		{"src", []File{
			{Path: "src", Type: "dir"},
			{Path: "src/a.txt", Type: "file", Mode: 0o644, Digest: sha("a")},
			{Path: "src/l", Type: "link", Link: "a.txt"},
			{Path: "src/sub", Type: "dir", Mode: 0o700},
			{Path: "src/sub/b.sh", Type: "file", Mode: 0o755, Digest: sha("b")},
		}},
		{"./top.txt", []File{{Path: "top.txt", Type: "file", Mode: 0o644, Digest: sha("top")}}},
		{"src/*.txt", []File{{Path: "src/a.txt", Type: "file", Mode: 0o644, Digest: sha("a")}}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			d, files, err := c.DigestFiles(ctx, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, files); diff != "" {
				t.Errorf("DigestFiles(%q) files (-want +got):\n%s", tt.src, diff)
			}
			want, err := c.Digest(ctx, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if d != want {
				t.Errorf("DigestFiles(%q) = %s, Digest = %s", tt.src, d, want)
			}
		})
	}
	// A changed file shows in its own entry only.
	if err := os.WriteFile(filepath.Join(dir, "src/sub/b.sh"), []byte("B"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, files, err := c.DigestFiles(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	if files[4].Digest != sha("B") || files[1].Digest != sha("a") {
		t.Errorf("after changing src/sub/b.sh: %+v", files)
	}
	if _, _, err := c.DigestFiles(ctx, "missing"); err == nil {
		t.Error("DigestFiles of a missing source succeeded")
	}
}
