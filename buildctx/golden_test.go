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
		{".", "sha256:f5d148467857b65408824418bfc5f97c9e6ef837d4d4cbe9f08d3d95e13e3414"},
		{"dir", "sha256:69ca8b0b131c9dd7d7fad5482f8242180af88c35b68dff6d334e3742be1e9746"},
		{"*.txt", "sha256:c1a19fc8e2953c3f1f25b3a24dd9fab4cb2788493901645f9030931bc3c09768"},
		{"big.bin", "sha256:fca4050234d2099457959a603e799dc6613d511e40286c29c8361dcefbe73433"},
		{"keep", "sha256:21fbd495a5ad305913e62f00b75abf566c43940db11f195033740d0b7d37d30c"},
		{"modes", "sha256:038eee8c88bae7956b26a65ebafdcd9de333e33d914e6763722d6f68adcab222"},
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
