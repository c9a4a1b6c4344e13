package layer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMergeKeepsHoles merges a layer holding a 10 GB sparse file (what a
// hostile image's small layer may claim): the copy is as sparse as the
// original, so that flattening such an image cannot fill the disk.
func TestMergeKeepsHoles(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower, dst := filepath.Join(base, "lower"), filepath.Join(base, "dst")
	if err := os.Mkdir(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(lower, "big"))
	if err != nil {
		t.Fatal(err)
	}
	const size = 10 << 30
	for _, off := range []int64{0, 5 << 30, size - 4} {
		if _, err := f.WriteAt([]byte("data"), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Merge(context.Background(), dst, []string{lower}); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "big"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Errorf("merged big has %d bytes, want %d", st.Size, int64(size))
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("merged big uses %d bytes of disk, want its holes kept", used)
	}
	g, err := os.Open(filepath.Join(dst, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, off := range []int64{0, 5 << 30, size - 4} {
		b := make([]byte, 4)
		if _, err := g.ReadAt(b, off); err != nil || string(b) != "data" {
			t.Errorf("merged big at %d: %q, %v; want data", off, b, err)
		}
	}
	b := make([]byte, 4)
	if _, err := g.ReadAt(b, 1<<30); err != nil || string(b) != "\x00\x00\x00\x00" {
		t.Errorf("merged big in a hole: %q, %v; want zeros", b, err)
	}
}
