package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// printManifest is one run step printing mib MiB of output: lines of 99
// "a" and a newline, a MiB (10485 lines) made once and printed mib times
// (busybox's fold would be slower than kiln); then, with long > 0, a line
// of long MiB of "b" and a last line "end".
func printManifest(mib, long int) string {
	run := fmt.Sprintf("yes %s | head -c 1048500 > /tmp/mib && i=0 && while [ $i -lt %d ]; do cat /tmp/mib; i=$((i+1)); done; rm /tmp/mib",
		strings.Repeat("a", 99), mib)
	if long > 0 {
		run += fmt.Sprintf("; head -c %d /dev/zero | tr '\\0' b; echo; echo end", long<<20)
	}
	return "from: busybox:latest\nsteps:\n  - run: " + run + "\n"
}

// TestBuildOutputFlat builds, in a kiln process of its own, a step that
// prints 192 MiB in 2 million lines and then a line of 64 MiB, with
// --progress plain, and checks that every line reached the log (the long
// one in pieces) and that kiln's peak memory stayed flat: far below the
// output's size. (The log printer held a line until its newline, copying
// it whole at each chunk: a long line took quadratic time and its size in
// memory.)
func TestBuildOutputFlat(t *testing.T) {
	const mib, long = 192, 64
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": printManifest(mib, long)})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--root", root, "build", "--progress", "plain", "-f", filepath.Join(dir, "kiln.yml"), dir)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := countLines(t, stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kiln build: %v\n%s", err, c.other)
	}
	took := time.Since(start)
	if want := mib * 10485; c.lines != want {
		t.Errorf("the log holds %d lines of output, want %d", c.lines, want)
	}
	if c.long != long<<20 || !c.end {
		t.Errorf("the log holds %d bytes of the long line (want %d), its end line: %v\n%s", c.long, long<<20, c.end, c.other)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	t.Logf("%d MiB of output in %s (%.0f MiB/s), peak RSS %d MiB", mib+long, took.Round(time.Millisecond), float64(mib+long)/took.Seconds(), rss>>20)
	if rss > 128<<20 {
		t.Errorf("kiln's peak RSS was %d MiB for %d MiB of output, want under 128 MiB", rss>>20, mib+long)
	}
}

// logCount is what countLines found in a build's log.
type logCount struct {
	lines int    // lines of 99 "a"
	long  int    // bytes of the pieces of the line of "b"
	end   bool   // the line "end" came
	other string // the first few kB of other lines
}

// countLines reads the plain log of node main/0 from r.
func countLines(t *testing.T, r io.Reader) logCount {
	t.Helper()
	var c logCount
	var other bytes.Buffer
	prefix := []byte("[main/0] | ")
	short := append(slices.Clip(prefix), strings.Repeat("a", 99)...)
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		l := s.Bytes()
		switch {
		case bytes.Equal(l, short):
			c.lines++
		case bytes.HasPrefix(l, prefix) && len(l) > len(prefix) && len(bytes.Trim(l[len(prefix):], "b")) == 0:
			c.long += len(l) - len(prefix)
		case bytes.Equal(l, append(slices.Clip(prefix), "end"...)):
			c.end = true
		default:
			if other.Len() < 4096 {
				other.Write(l)
				other.WriteByte('\n')
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	c.other = other.String()
	return c
}

// BenchmarkStepOutput builds, in this process, a step printing 64 MiB
// with --progress plain into a pipe that is read away: the throughput of
// step output (profile it with -cpuprofile).
func BenchmarkStepOutput(b *testing.B) {
	const mib = 64
	enginetest.RequireRoot(b)
	root := filepath.Join(b.TempDir(), "root")
	if r := run(b.Context(), []string{"--root", root, "import", enginetest.Busybox(b), "-t", "busybox", "--cmd", "/bin/sh"}, strings.NewReader(""), io.Discard, io.Discard); r != 0 {
		b.Fatalf("import: exit %d", r)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(printManifest(mib, 0)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(mib << 20)
	for b.Loop() {
		var log countingWriter
		if code := run(b.Context(), []string{"--root", root, "build", "--no-cache", "--progress", "plain", "-f", filepath.Join(dir, "kiln.yml"), dir}, strings.NewReader(""), io.Discard, &log); code != 0 {
			b.Fatalf("build: exit %d", code)
		}
		if log < mib<<20 {
			b.Fatalf("the log holds %d bytes, want over %d", log, mib<<20)
		}
	}
}

// countingWriter counts what is written to it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
