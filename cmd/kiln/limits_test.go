package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestBuildLimits: a step's own timeout, memory and pids limits, and the
// build's --timeout, stop a step with a message naming the limit.
func TestBuildLimits(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	for _, tc := range []struct {
		name  string
		step  string
		flags []string
		want  string
	}{
		{"step timeout", "  - run: sleep 30\n    timeout: 300ms\n", nil, "past its timeout of 300ms"},
		{"build timeout", "  - run: sleep 30\n", []string{"--timeout", "300ms"}, "past its timeout of 300ms"},
		{"step memory", "  - run: tail /dev/zero\n    memory: 32m\n", nil, "out of memory, over its limit of 32 MiB"},
		{"build memory", "  - run: tail /dev/zero\n", []string{"--memory", "32m"}, "out of memory, over its limit of 32 MiB"},
		{"step pids", "  - run: for i in $(seq 40); do sleep 5 & done; wait\n    pids: 10\n", nil, "can't fork"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := "from: busybox\nsteps:\n" + tc.step
			if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(m), 0o644); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r := kiln(t, root, nil, append(append([]string{"build", "--progress", "plain"}, tc.flags...), dir)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "kiln.yml:3") {
				t.Errorf("exit %d, stderr:\n%s\nwant the error to say %q at kiln.yml:3", r.code, r.stderr, tc.want)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the limited step took %v", took)
			}
		})
	}
	// Within its limits, a limited step runs.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte("from: busybox\nsteps:\n  - run: echo ok\n    timeout: 30s\n    memory: 64m\n    pids: 20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "build", dir)
}
