package buildctx

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDigestGolden pins Digest's values on a fixed tree: files of several
// sizes (empty, one read buffer and more), modes with setuid, setgid and
// sticky bits, links, an empty directory, a deep one, and ignore rules with
// an exception. A change of the walk or of the hashing that changes a
// digest fails here: every build's cache keys would change with it.
func TestDigestGolden(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 300<<10/16) // more than one 256 KiB read
	makeTree(t, dir,
		node{Name: ".kilnignore", Data: "**/*.log\n!keep/*.log\n"},
		node{Name: "a.txt", Data: "alpha"},
		node{Name: "empty.txt"},
		node{Name: "big.bin", Data: big},
		node{Name: "dir/b.txt", Data: "bravo"},
		node{Name: "dir/run.sh", Data: "#!/bin/sh\n", Mode: 0o755},
		node{Name: "dir/x.log", Data: "ignored"},
		node{Name: "dir/empty/"},
		node{Name: "dir/link", Link: "b.txt"},
		node{Name: "dir/abs", Link: "/etc/passwd"},
		node{Name: "keep/y.log", Data: "kept"},
		node{Name: "modes/suid", Data: "s", Mode: 0o755 | os.ModeSetuid},
		node{Name: "modes/sgid/", Mode: 0o755 | os.ModeSetgid},
		node{Name: "modes/sticky/", Mode: 0o777 | os.ModeSticky},
		node{Name: "deep/1/2/3/4/f", Data: "deep"},
	)
	for i := range 40 {
		makeTree(t, dir, node{Name: fmt.Sprintf("many/f%02d", i), Data: strings.Repeat("x", i)})
	}
	// Parents made on the way get the umask: set their modes.
	for _, d := range []string{"dir", "keep", "modes", "deep", "deep/1", "deep/1/2", "deep/1/2/3", "deep/1/2/3/4", "many"} {
		if err := os.Chmod(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ src, want string }{
		{".", "sha256:e6608467121e0d9e3338d626d8b31f0dc00f976d58aab0fb48ff635f5e66d679"},
		{"dir", "sha256:469b830ef6f99a4f81bdfa09feb99af5313cf8da4363ba3cbb8198de8d5f8e25"},
		{"*.txt", "sha256:9e01631cfa922f67226e95612f4a65690023e10d8dc2e4c2e9586a393fa7b0c2"},
		{"big.bin", "sha256:854fcb3eeb96df3c3dc8d295cea083819f84fd277d5f66fa68b3cf7b9a81d46d"},
		{"keep", "sha256:f23a7aa45388dc4c0b2ae225db349c11ef7d7c502c2004157e48279a1673846b"},
		{"modes", "sha256:2e725259bc10dd39188d83e9b92c9370bab55943cb6db64c0a0ee0f314897c09"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			got, err := c.Digest(context.Background(), tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want {
				t.Errorf("Digest(%q) = %s, want %s", tc.src, got, tc.want)
			}
		})
	}
}
