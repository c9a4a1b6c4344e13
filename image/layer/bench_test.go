package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// BenchmarkExtract extracts a layer like copy5k's (5,000 files of 64 to
// 2,047 bytes in 50 directories, and one of 20 MiB) and one ten times its
// files (50k) to the disk, each run into a new directory (the old ones are
// left: files made right after an rm -rf are slower on ext4). Per file,
// the 50k layer should cost what the 5k one does.
func BenchmarkExtract(b *testing.B) {
	for _, n := range []int{5000, 50000} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		mt := time.Unix(1_700_000_000, 0)
		line := strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ\n", 32)
		for i := range n {
			if i%100 == 0 {
				if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("files/d%03d/", i/100), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt}); err != nil {
					b.Fatal(err)
				}
			}
			size := 64 + (i*7919)%1984
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("files/d%03d/f%05d.txt", i/100, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: mt}); err != nil {
				b.Fatal(err)
			}
			if _, err := tw.Write([]byte(line[:size])); err != nil {
				b.Fatal(err)
			}
		}
		big := make([]byte, 20<<20)
		for i := range big {
			big[i] = byte(i * 7)
		}
		if err := tw.WriteHeader(&tar.Header{Name: "data/random.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(big)), ModTime: mt}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(big); err != nil {
			b.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			dir := b.TempDir()
			runs := 0
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				runs++
				if err := Extract(context.Background(), bytes.NewReader(buf.Bytes()), filepath.Join(dir, strconv.Itoa(runs))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed())/float64(runs)/float64(n+1), "ns/file")
		})
	}
}

// BenchmarkDigestTreeSmall digests the tree of a typical RUN step's
// layer: a directory and one small file. Its B/op is what each step's
// layer record costs the garbage collector.
func BenchmarkDigestTreeSmall(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "step01"), []byte("step01\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DigestTree(context.Background(), dir, true); err != nil {
			b.Fatal(err)
		}
	}
}
