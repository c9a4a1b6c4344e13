package container

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// running starts a container running `sleep 30` with exec support and
// returns it; it is deleted when the test ends.
func (e *env) running(t *testing.T, id string) engine.Container {
	t.Helper()
	ctx := context.Background()
	mounts, err := e.sn.Prepare(ctx, id, []string{e.lower})
	if err != nil {
		t.Fatal(err)
	}
	p := sh("echo main > /main; sleep 30")
	p.Stderr = os.Stderr
	c, err := e.rt.Create(ctx, engine.Spec{ID: id, Rootfs: mounts, Process: p, Exec: true, Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	c := e.running(t, "exec")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		p      engine.Process
		code   int
		stdout string
	}{
		{"sees the container", sh("sleep 0.1; cat /main; hostname; cat /proc/1/cmdline | tr '\\0' ' '"), 0, "main\nbox\nsleep 30 "},
		{"exit status", sh("exit 7"), 7, ""},
		{"env cwd user", engine.Process{Args: []string{"sh", "-c", "echo $A $(pwd) $(id -u)"}, Env: []string{"A=b"}, Cwd: "/tmp", User: "nobody"}, 0, "b /tmp 65534\n"},
		{"stdin", engine.Process{Args: []string{"cat"}, Stdin: strings.NewReader("piped\n")}, 0, "piped\n"},
		{"capabilities", sh("grep -E 'CapBnd|NoNewPrivs' /proc/self/status"), 0, "CapBnd:\t00000000a80405fb\nNoNewPrivs:\t1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			tc.p.Stdout, tc.p.Stderr = &out, &errb
			st, err := c.Exec(ctx, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.code || out.String() != tc.stdout {
				t.Errorf("exit %d stdout %q stderr %q; want %d %q", st.Code, out.String(), errb.String(), tc.code, tc.stdout)
			}
		})
	}
	if _, err := c.Exec(ctx, engine.Process{Args: []string{"no-such-program"}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("exec of a missing program: %v", err)
	}
}

func TestExecCancel(t *testing.T) {
	e := newEnv(t)
	c := e.running(t, "cancel")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := c.Exec(ctx, sh("sleep 20"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Cancelled || time.Since(start) > 2*time.Second {
		t.Errorf("status %+v after %v, want cancelled promptly", st, time.Since(start))
	}
}

func TestExecTTY(t *testing.T) {
	e := newEnv(t)
	c := e.running(t, "tty")
	var out bytes.Buffer
	var sized bool
	st, err := c.Exec(context.Background(), engine.Process{
		Args: []string{"sh", "-c", "tty; echo $TERM; stty size; read line; echo got $line"}, Terminal: true,
		Stdin: strings.NewReader("typed\n"), Stdout: &out,
		Console: func(m *os.File) { sized = pty.Setsize(m, &pty.Winsize{Rows: 33, Cols: 111}) == nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "xterm\n", "33 111\n", "got typed\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
	if st.Code != 0 || !sized {
		t.Errorf("exit %d, console callback called: %v", st.Code, sized)
	}
}

func TestTerminalPID1(t *testing.T) {
	e := newEnv(t)
	p := sh("tty; id -u; stat -c %U $(tty)")
	p.Terminal, p.User = true, "nobody"
	r := e.run(context.Background(), engine.Spec{Process: p})
	got := strings.ReplaceAll(r.stdout, "\r", "")
	if r.status.Code != 0 || got != "/dev/pts/0\n65534\nnobody\n" {
		t.Errorf("exit %d, output %q: want a terminal of its own, owned by its user", r.status.Code, got)
	}
}

func TestExecWithoutSupport(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mounts, err := e.sn.Prepare(ctx, "noexec", []string{e.lower})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.rt.Create(ctx, engine.Spec{ID: "noexec", Rootfs: mounts, Process: sh("sleep 5")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(ctx) //nolint:errcheck // the test is about Exec
	if _, err := c.Exec(ctx, sh("true")); err == nil {
		t.Error("Exec in a container created without Spec.Exec: no error")
	}
}

// TestExecStdioOnly: a descriptor this process holds without
// close-on-exec, open on a host directory, reaches neither a container's
// PID 1 nor a process started in it by the exec helper.
func TestExecStdioOnly(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "marker"), []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(host, unix.O_RDONLY|unix.O_DIRECTORY, 0) // no O_CLOEXEC, on purpose
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	probe := fmt.Sprintf("cat /proc/self/fd/%d/marker 2>/dev/null; echo $(ls /proc/self/fd)", fd)
	const want = "0 1 2 3\n"

	c := e.running(t, "stdio-only")
	var out bytes.Buffer
	if st, err := c.Exec(context.Background(), engine.Process{Args: []string{"sh", "-c", probe}, Stdout: &out}); err != nil || st.Code != 0 {
		t.Fatalf("exec: %v, %+v", err, st)
	}
	if out.String() != want {
		t.Errorf("exec'd process: stdout %q, want %q", out.String(), want)
	}
	if r := e.run(context.Background(), engine.Spec{Process: sh(probe)}); r.stdout != want {
		t.Errorf("PID 1: stdout %q, want %q", r.stdout, want)
	}
}
