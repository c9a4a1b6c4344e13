package main

import (
	"bytes"
	"context"
	"github.com/kiln-build/kiln/image/registry"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kiln-build/kiln/engine/enginetest"
)

func TestRun(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)

	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		// wantStderr is a substring of stderr, which must be one line;
		// "" wants stderr empty.
		wantStderr string
		within     time.Duration // 0 for no bound
	}{
		{name: "echo", args: []string{"busybox", "--", "echo", "hello"}, wantStdout: "hello\n"},
		{name: "copy snapshotter", args: []string{"--snapshotter", "copy", "busybox", "--", "echo", "hello"}, wantStdout: "hello\n"},
		{name: "exit status", args: []string{"busybox", "--", "sh", "-c", "exit 3"}, wantCode: 3},
		{name: "stderr", args: []string{"busybox", "--", "sh", "-c", "echo oops >&2"}, wantStderr: "oops"},
		{name: "unknown image", args: []string{"nosuchimage"}, wantCode: 125, wantStderr: "nosuchimage"},
		{name: "unknown command", args: []string{"busybox", "--", "nosuchcmd"}, wantCode: 127, wantStderr: "nosuchcmd"},
		{name: "image cmd with stdin", args: []string{"-i", "busybox"}, stdin: "echo hi\n", wantStdout: "hi\n"},
		{name: "no stdin without -i", args: []string{"busybox", "--", "cat"}, stdin: "echo hi\n"},
		{name: "env", args: []string{"-e", "K=V", "busybox", "--", "sh", "-c", "echo $K"}, wantStdout: "V\n"},
		{name: "workdir", args: []string{"-w", "/x", "busybox", "--", "pwd"}, wantStdout: "/x\n"},
		{name: "user", args: []string{"-u", "nobody", "busybox", "--", "id"}, wantStdout: "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"},
		{name: "hostname", args: []string{"--hostname", "h", "busybox", "--", "hostname"}, wantStdout: "h\n"},
		{name: "network none", args: []string{"--network", "none", "busybox", "--", "ls", "/sys/class/net"}, wantStdout: "lo\n"},
		{
			name: "timeout", args: []string{"--timeout", "500ms", "busybox", "--", "sleep", "10"},
			wantCode: 137, wantStderr: "the timeout passed", within: 5 * time.Second,
		},
		{
			name: "memory", args: []string{"-m", "32m", "busybox", "--", "tail", "/dev/zero"},
			wantCode: 137, wantStderr: "out of memory", within: 10 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r := kiln(t, root, strings.NewReader(tt.stdin), append([]string{"run"}, tt.args...)...)
			took := time.Since(start)
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			switch {
			case tt.wantStderr == "" && r.stderr != "":
				t.Errorf("stderr %q, want none", r.stderr)
			case tt.wantStderr != "" && (!strings.Contains(r.stderr, tt.wantStderr) || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n")):
				t.Errorf("stderr %q: want one line that says %q", r.stderr, tt.wantStderr)
			}
			if tt.within > 0 && took > tt.within {
				t.Errorf("took %v, want at most %v", took, tt.within)
			}
		})
	}
}

// TestRunTTY runs kiln run -it with a pseudo-terminal as its stdin and
// stdout, as a shell would, and reads what the container wrote from the
// terminal's other side.
func TestRunTTY(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, ptmx) // ends with EIO once tty is closed
		close(copied)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	var stderr bytes.Buffer
	code := run(ctx, []string{"--root", root, "run", "-it", "busybox", "--", "sh", "-c", "tty; test -t 0 && echo stdin is a terminal; echo $TERM"}, tty, tty, &stderr)
	// kiln's goroutine that copies its stdin to the container is still
	// reading tty, which kiln made blocking (term.MakeRaw calls Fd), so
	// that Close waits for that read: give it a byte to end it, and the
	// master then reads EIO.
	tty.Close()
	if _, err := ptmx.Write([]byte("\n")); err != nil {
		t.Error(err)
	}
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
		t.Error("the terminal's output did not end")
	}
	if code != 0 {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"stdin is a terminal\n", "xterm\n", "/dev/pts/0\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output %q: want %q", got, want)
		}
	}
}

func TestShortNamesHaveNoRegistry(t *testing.T) {
	for ref, want := range map[string]bool{
		"busybox": false, "busybox:latest": false, "library/busybox:1": false,
		"127.0.0.1:5000/busybox": true, "localhost/x": true, "localhost:5000/x:1": true,
		"registry.example.org/app": true, "gcr.io/x/y@sha256:abc": true,
	} {
		if got := registry.HasHost(ref); got != want {
			t.Errorf("registry.HasHost(%q) = %v, want %v", ref, got, want)
		}
	}
}
