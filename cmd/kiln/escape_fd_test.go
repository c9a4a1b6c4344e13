package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// kilnProcess runs the kiln command line args with --root root as a
// process of its own (this test binary with KILN_TEST_MAIN=1), started
// through wrapper (a command line that execs its arguments; none for
// kiln itself), with extra as its descriptors from 3 on (nil entries are
// closed), as a CI runner would leave them.
func kilnProcess(t *testing.T, root string, wrapper []string, extra []*os.File, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*commandTimeout)
	defer cancel()
	argv := append(append(append([]string{}, wrapper...), os.Args[0], "--root", root), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running kiln %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// fdProbe looks, from inside a container, for descriptors 7 and 9 (open
// on a host directory holding "marker" when kiln started) and lists the
// process's descriptors: "0 1 2 3" (3 is ls's own reading of the
// directory) when it got exactly its stdio.
const fdProbe = `for n in 7 9; do
  if [ -e /proc/self/fd/$n ]; then echo "fd $n is open: $(ls -l /proc/self/fd/$n)"; fi
  if cat /proc/self/fd/$n/marker 2>/dev/null; then echo "read the host's marker through fd $n"; fi
done
echo $(ls /proc/self/fd)`

// TestEscapeInheritedFD gives kiln, as a CI runner may, descriptors 7
// and 9 open (without close-on-exec) on a host directory: neither a
// kiln run nor a build step sees them, nor reads the host through them.
func TestEscapeInheritedFD(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "marker"), []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// Entry i becomes descriptor 3+i: 7 and 9.
	extra := []*os.File{nil, nil, nil, nil, dir, nil, dir}
	const want = "0 1 2 3\n"

	t.Run("run", func(t *testing.T) {
		r := kilnProcess(t, root, nil, extra, "run", "busybox", "--", "sh", "-c", fdProbe)
		if r.code != 0 || r.stdout != want {
			t.Errorf("kiln run: exit %d, stdout %q (want %q), stderr %s", r.code, r.stdout, want, r.stderr)
		}
	})
	t.Run("build step", func(t *testing.T) {
		// The step fails when it sees more than its stdio.
		script := fdProbe + ` > /fds; cat /fds; test "$(cat /fds)" = "0 1 2 3"`
		ctx := writeContext(t, map[string]string{
			"kiln.yml": "from: busybox\nsteps:\n  - run: |\n" + indent(script, "      ") + "\n",
		})
		r := kilnProcess(t, root, nil, extra, "build", ctx)
		if r.code != 0 {
			t.Errorf("kiln build: exit %d (the step saw more than its stdio)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})
}

// indent prefixes each line of s with p.
func indent(s, p string) string {
	return p + strings.ReplaceAll(s, "\n", "\n"+p)
}
