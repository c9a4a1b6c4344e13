package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// deepManifest builds one run step per entry of the list n, from a
// Jinja loop; step 40 removes what step 7 wrote, so that a whiteout lies
// deep in the stack.
const deepManifest = `---
vars:
  n: 100
---
from: busybox:latest
steps:
{% for i in range(1, n + 1) %}
{% if i == 40 %}
  - run: rm /step7 && echo step40 > /step40
{% else %}
  - run: echo step{{ i }} > /step{{ i }}
{% endif %}
{% endfor %}
`

// TestBuildDeepManifest builds 100 run steps (overlayfs refused the
// 55th: its lowerdir list passed one page) and checks the image holds
// what every step did, the deep whiteout included.
func TestBuildDeepManifest(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": deepManifest})
	kilnLong(t, root, "build", "-f", filepath.Join(dir, "kiln.yml"), "-t", "deep100", dir)
	got := mustKiln(t, root, "run", "deep100", "--", "sh", "-c", "ls / | grep -c '^step'; test ! -e /step7 && cat /step1 /step55 /step100").stdout
	if want := "99\nstep1\nstep55\nstep100\n"; got != want {
		t.Errorf("the 100-step image holds %q, want %q", got, want)
	}
}

// deepSteps is past overlayfs's limit of 500 lower layers, so that the
// last steps (and kiln run of the image) need a merged base.
const deepSteps = 510

// TestBuildDeepDockerfile builds a generated Dockerfile of 510 RUN steps,
// past overlayfs's 500 lower layers, then builds it again all cached.
// It takes 20 to 45 s: make test-deep (which .ci/run calls) runs it.
func TestBuildDeepDockerfile(t *testing.T) {
	if os.Getenv("KILN_TEST_DEEP") != "1" {
		t.Skip("builds 510 steps (20-45 s): run by make test-deep (KILN_TEST_DEEP=1), which .ci/run calls")
	}
	root := buildRoot(t)
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for i := 1; i <= deepSteps; i++ {
		switch i {
		case 300:
			fmt.Fprintf(&df, "RUN rm /step7 && echo step%d > /step%d\n", i, i)
		case deepSteps:
			// Runs on the deepest stack: 510 lower layers.
			fmt.Fprintf(&df, "RUN test ! -e /step7 && cat /step1 /step499 > /step%d\n", i)
		default:
			fmt.Fprintf(&df, "RUN echo step%d > /step%d\n", i, i)
		}
	}
	dir := writeContext(t, map[string]string{"Dockerfile": df.String()})
	start := time.Now()
	kilnLong(t, root, "build", "--network", "none", "-f", filepath.Join(dir, "Dockerfile"), "-t", "deep", dir)
	cold := time.Since(start)
	start = time.Now()
	r := kilnLong(t, root, "build", "--network", "none", "--progress", "plain", "-f", filepath.Join(dir, "Dockerfile"), "-t", "deep", dir)
	t.Logf("%d steps: cold %s, cached %s", deepSteps, cold.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(r.stderr, fmt.Sprintf("0 nodes ran, %d cached", deepSteps+1)) {
		t.Errorf("the second build ran steps:\n%s", lastLines(r.stderr, 3))
	}
	got := mustKiln(t, root, "run", "deep", "--", "sh", "-c", fmt.Sprintf("ls / | grep -c '^step'; cat /step%d", deepSteps)).stdout
	if want := fmt.Sprintf("%d\nstep1\nstep499\n", deepSteps-1); got != want {
		t.Errorf("the %d-step image holds %q, want %q", deepSteps, got, want)
	}
}

// BenchmarkChain builds chains of n tiny run steps (as bench/run.sh's
// chainN), cold (a fresh root with only the base) and cached, and reports
// the cost per step: a deep chain should cost per step about what a short
// one does.
func BenchmarkChain(b *testing.B) {
	enginetest.RequireRoot(b)
	base := enginetest.Busybox(b)
	for _, n := range []int{10, 50, 100, 500} {
		var m strings.Builder
		m.WriteString("from: busybox:latest\nsteps:\n")
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&m, "  - run: echo step%d > /step%d\n", i, i)
		}
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		newRoot := func() string {
			root := filepath.Join(b.TempDir(), "root")
			benchKiln(b, root, "import", base, "-t", "busybox", "--cmd", "/bin/sh")
			return root
		}
		build := []string{"build", "-f", filepath.Join(dir, "kiln.yml"), dir}
		b.Run(fmt.Sprintf("%d/cold", n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				root := newRoot()
				b.StartTimer()
				benchKiln(b, root, build...)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/step")
		})
		b.Run(fmt.Sprintf("%d/cached", n), func(b *testing.B) {
			root := newRoot()
			benchKiln(b, root, build...)
			for b.Loop() {
				benchKiln(b, root, build...)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/step")
		})
	}
}

// benchKiln runs a kiln command line that must succeed, for a benchmark.
func benchKiln(b *testing.B, root string, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	if code := run(b.Context(), append([]string{"--root", root}, args...), strings.NewReader(""), io.Discard, &stderr); code != 0 {
		b.Fatalf("kiln %s: exit %d\n%s", strings.Join(args, " "), code, lastLines(stderr.String(), 5))
	}
}
