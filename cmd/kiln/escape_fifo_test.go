package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// fifoDeadline is how long a kiln command given a FIFO may take: reading
// one never ends, refusing one is immediate.
const fifoDeadline = 5 * time.Second

// kilnBounded runs kiln with --root root and args as a process of its own
// and kills it (SIGKILL, by its PID) after fifoDeadline: a kiln blocked
// in open(2) or read(2) on a FIFO ignores its context and SIGTERM, so it
// cannot run in this process. hung reports that it was killed.
func kilnBounded(t *testing.T, root string, args ...string) (r result, hung bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fifoDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"--root", root}, args...)...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r = result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, true
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running kiln %s: %v", strings.Join(args, " "), err)
	}
	return r, false
}

// mkfifo makes name in dir a FIFO, making its parents.
func mkfifo(t *testing.T, dir, name string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEscapeFIFOContext: a hostile repository puts a FIFO where kiln
// reads a file (the ignore files, a template source, a copy source, an
// include, kiln.lock, a Dockerfile, a module, the manifest, a values
// file). No command waits on it: each ends within seconds, failing with
// an error naming the file and saying it is a named pipe; a FIFO inside
// a copied directory is skipped with a warning naming it, and the build
// succeeds.
func TestEscapeFIFOContext(t *testing.T) {
	enginetest.RequireRoot(t)
	copyA := "from: scratch\nsteps:\n  - copy: a.txt /a.txt\n"
	cases := []struct {
		name  string
		files map[string]string
		fifo  string
		args  [][]string // each followed by the context directory
		ok    bool       // the commands succeed (the FIFO is skipped)
		want  string     // what the output must say
	}{
		{name: ".dockerignore", files: map[string]string{"kiln.yml": copyA, "a.txt": "a"},
			fifo: ".dockerignore", args: [][]string{{"build"}}, want: ".dockerignore is a named pipe"},
		{name: ".kilnignore", files: map[string]string{"kiln.yml": copyA, "a.txt": "a"},
			fifo: ".kilnignore", args: [][]string{{"build"}}, want: ".kilnignore is a named pipe"},
		{name: "template source", files: map[string]string{"kiln.yml": "from: scratch\nsteps:\n  - template: {src: motd.j2, dst: /etc/motd}\n"},
			fifo: "motd.j2", args: [][]string{{"build"}}, want: "motd.j2 is a named pipe"},
		{name: "copy source", files: map[string]string{"kiln.yml": "from: scratch\nsteps:\n  - copy: p /p\n"},
			fifo: "p", args: [][]string{{"build"}}, want: `"p" is a named pipe`},
		{name: "copy source in a directory", files: map[string]string{"kiln.yml": "from: scratch\nsteps:\n  - copy: d /d\n", "d/a.txt": "a"},
			fifo: "d/p", args: [][]string{{"build"}}, ok: true, want: `skipping a named pipe "d/p"`},
		{name: "include", files: map[string]string{"kiln.yml": "from: scratch\nsteps:\n{% include \"steps.yml\" %}\n"},
			fifo: "steps.yml", args: [][]string{{"build"}, {"render"}}, want: "steps.yml is a named pipe"},
		{name: "kiln.lock", files: map[string]string{"kiln.yml": copyA, "a.txt": "a"},
			fifo: "kiln.lock", args: [][]string{{"build", "--locked"}, {"outdated"}}, want: "kiln.lock is a named pipe"},
		{name: "kiln.lock warning", files: map[string]string{"kiln.yml": copyA, "a.txt": "a"},
			fifo: "kiln.lock", args: [][]string{{"build"}}, ok: true, want: "kiln.lock is a named pipe"},
		{name: "dockerfile stage", files: map[string]string{"kiln.yml": "stages:\n  base: {dockerfile: ./Dockerfile.build}\n  main: {from: base}\n"},
			fifo: "Dockerfile.build", args: [][]string{{"build"}, {"render"}}, want: "Dockerfile.build is a named pipe"},
		{name: "dockerfile", files: map[string]string{"a.txt": "a"},
			fifo: "Dockerfile", args: [][]string{{"build"}}, want: "Dockerfile is a named pipe"},
		{name: "module", files: map[string]string{"kiln.yml": "from: scratch\nsteps:\n  - use: ./lib/x\n"},
			fifo: "lib/x/module.yml", args: [][]string{{"build"}, {"render"}}, want: "module.yml is a named pipe"},
		{name: "manifest", files: map[string]string{"a.txt": "a"},
			fifo: "kiln.yml", args: [][]string{{"build"}, {"render"}}, want: "kiln.yml is a named pipe"},
		{name: "values file", files: map[string]string{"kiln.yml": copyA, "a.txt": "a"},
			fifo: "values.yml", args: [][]string{{"build", "--values", "VALUES"}}, want: "values.yml is a named pipe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, tc.files)
			mkfifo(t, dir, tc.fifo)
			root := newRoot(t)
			for _, args := range tc.args {
				args = append(args, dir)
				for i, a := range args {
					if a == "VALUES" {
						args[i] = filepath.Join(dir, tc.fifo)
					}
				}
				what := "kiln " + strings.Join(args, " ")
				start := time.Now()
				r, hung := kilnBounded(t, root, args...)
				if hung {
					t.Errorf("%s: still running after %s, killed: it waits on the FIFO %s\nstderr: %s", what, fifoDeadline, tc.fifo, r.stderr)
					continue
				}
				if ok := r.code == 0; ok != tc.ok {
					t.Errorf("%s: exit %d after %s, want success %v\nstdout: %s\nstderr: %s", what, r.code, time.Since(start).Round(time.Millisecond), tc.ok, r.stdout, r.stderr)
				}
				if !strings.Contains(r.stderr, tc.want) {
					t.Errorf("%s: stderr does not say %q:\n%s", what, tc.want, r.stderr)
				}
			}
		})
	}
}
