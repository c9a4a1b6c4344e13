package buildctx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeCopy5k makes a context like ../shared/bench/cases/copy5k/gen.sh:
// files/dNN/fNNNN.txt, 5,000 text files of 64..2047 bytes in 50
// directories, and data/random.bin, 20 MiB of pseudo-random bytes.
func makeCopy5k(b *testing.B) string { return makeCopyN(b, 5000) }

// makeCopyN is makeCopy5k with n files, 100 a directory.
func makeCopyN(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	line := "the quick brown fox jumps over the lazy dog 0123456789 ABCDEFGHIJ\n"
	for i := range n {
		d := filepath.Join(dir, "files", fmt.Sprintf("d%02d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		n := 64 + (i*7919)%1984
		s := fmt.Sprintf("file %d size %d\n", i, n)
		s += strings.Repeat(line, n/len(line)+1)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.txt", i)), []byte(s[:n]), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 20<<20)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(data)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "random.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkDigest digests a copy5k context as a warm build does: a new
// Context (as in a new kiln process), with the files in the page cache.
// Besides the wall time it reports the process's CPU time (user and
// system) per digest, cpu-ns/op, which on a machine shared with other
// work varies much less than the wall time.
func BenchmarkDigest(b *testing.B) {
	dir := makeCopy5k(b)
	ctx := context.Background()
	for _, src := range []string{".", "files", "data"} {
		b.Run(src, func(b *testing.B) {
			cpu0 := cpuTime(b)
			for b.Loop() {
				c, err := Open(dir)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Digest(ctx, src); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCopy copies a copy5k context, and one ten times its files
// (50k), into an empty root, on the calling goroutine (serial) and with
// parallel writers as a copy step does: per file, the 50k copy should
// cost what the 5k one does. Besides the wall time it reports the CPU time
// per file, cpu-ns/file.
func BenchmarkCopy(b *testing.B) {
	for _, n := range []int{5000, 50000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) { benchmarkCopyN(b, n) })
	}
}

func benchmarkCopyN(b *testing.B, n int) {
	ctx := context.Background()
	c, err := Open(makeCopyN(b, n))
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		goFn func(func()) error
	}{{"serial", nil}, {"parallel", goStatement}} {
		b.Run(mode.name, func(b *testing.B) {
			root := b.TempDir()
			opts := CopyOptions{UID: os.Geteuid(), GID: os.Getegid(), Go: mode.goFn}
			var cpu time.Duration
			runs := 0
			for b.Loop() {
				runs++
				cpu0 := cpuTime(b)
				if err := c.Copy(ctx, ".", root, "/app", opts); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime(b) - cpu0
				b.StopTimer()
				// Moved aside, not removed: files made right after an
				// rm -rf are slower on ext4 (recently freed inodes).
				if err := os.Rename(filepath.Join(root, "app"), filepath.Join(root, fmt.Sprintf("old%d", runs))); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu)/float64(runs)/float64(n+1), "cpu-ns/file")
			b.ReportMetric(float64(b.Elapsed())/float64(runs)/float64(n+1), "ns/file")
		})
	}
}
