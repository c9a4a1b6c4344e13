package store

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/layer"
)

// TestStack stacks 11 layers (a whiteout and an opaque directory among
// them) with a limit of 4: the bottom ones are merged into one
// directory, the stack shows the same files as all the layers, the
// merged base is reused, and one more layer merges only one more group.
func TestStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("whiteouts and trusted.overlay xattrs need root")
	}
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for i := range 12 {
		d := filepath.Join(s.layersDir(), fmt.Sprintf("%064x", i))
		mustMkdir(t, d)
		mustWrite(t, filepath.Join(d, fmt.Sprintf("f%d", i)), fmt.Sprint(i))
		switch i {
		case 2:
			mustMkdir(t, filepath.Join(d, "d"))
			mustWrite(t, filepath.Join(d, "d", "old"), "old")
		case 3: // deletes f1
			if err := unix.Mknod(filepath.Join(d, "f1"), unix.S_IFCHR, 0); err != nil {
				t.Fatal(err)
			}
		case 5: // d, opaque: old goes
			mustMkdir(t, filepath.Join(d, "d"))
			if err := unix.Setxattr(filepath.Join(d, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, filepath.Join(d, "d", "new"), "new")
		}
		dirs = append(dirs, d)
	}

	stacked, err := s.Stack(ctx, dirs[:11], 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(stacked) > 5 || !strings.HasPrefix(filepath.Base(stacked[0]), mergedPrefix) {
		t.Fatalf("Stack of 11 with a limit of 4 gave %d directories, from %s", len(stacked), stacked[0])
	}
	if want := dirs[11-len(stacked)+1 : 11]; strings.Join(stacked[1:], ":") != strings.Join(want, ":") {
		t.Errorf("the top of the stack is %v, want %v", stacked[1:], want)
	}
	if got, want := view(t, stacked), view(t, dirs[:11]); got != want {
		t.Errorf("the stack shows\n%s\nall the layers show\n%s", got, want)
	}
	if got := view(t, stacked); strings.Contains("\n"+got, "\nf1 ") || strings.Contains(got, "d/old") || !strings.Contains(got, "d/new") {
		t.Errorf("the whiteout or the opaque directory was lost:\n%s", got)
	}

	merged := mergedDirs(t, s)
	again, err := s.Stack(ctx, dirs[:11], 4)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != stacked[0] || mergedDirs(t, s) != merged {
		t.Errorf("a second Stack made another merged directory: %s, %d then %d", again[0], merged, mergedDirs(t, s))
	}
	deeper, err := s.Stack(ctx, dirs, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := mergedDirs(t, s); got != merged+1 {
		t.Errorf("one more layer made %d merged directories, want 1", got-merged)
	}
	if got, want := view(t, deeper), view(t, dirs); got != want {
		t.Errorf("the deeper stack shows\n%s\nall the layers show\n%s", got, want)
	}
}

// view merges dirs into a new directory and lists what it holds.
func view(t *testing.T, dirs []string) string {
	t.Helper()
	dst := t.TempDir()
	if err := layer.Merge(context.Background(), dst, dirs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dst {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		content := ""
		if d.Type().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = string(c)
		}
		fmt.Fprintf(&b, "%s %v %q\n", rel, d.Type(), content)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mergedDirs(t *testing.T, s *Store) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.layersDir(), mergedPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func mustMkdir(t *testing.T, d string) {
	t.Helper()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
