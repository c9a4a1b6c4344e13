package layer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkWriteOverlayDiff writes an upperdir of KILN_BENCH_MB megabytes
// (default 200) in four big files, plus 4,000 small files in 40 dirs.
func BenchmarkWriteOverlayDiff(b *testing.B) {
	mb := 200
	if s := os.Getenv("KILN_BENCH_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil || mb <= 0 {
			b.Fatalf("KILN_BENCH_MB=%q: want a positive number of megabytes", s)
		}
	}
	upper := b.TempDir()
	var total int64
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for i := range 4 {
		f, err := os.Create(filepath.Join(upper, fmt.Sprintf("big%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		for range mb / 4 {
			n, err := f.Write(chunk)
			if err != nil {
				b.Fatal(err)
			}
			total += int64(n)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	small := chunk[:3000]
	for d := range 40 {
		dir := filepath.Join(upper, fmt.Sprintf("dir%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), small, 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(len(small))
		}
	}
	b.SetBytes(total)
	for b.Loop() {
		if err := WriteOverlayDiff(context.Background(), io.Discard, upper); err != nil {
			b.Fatal(err)
		}
	}
}
