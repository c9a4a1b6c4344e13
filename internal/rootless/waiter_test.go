//go:build linux

package rootless

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// startWaiter starts waiter's command for exe with args, its fd 3 the
// read end of a pipe whose write end it returns.
func startWaiter(t *testing.T, shell, exe string, args []string) (*exec.Cmd, *strings.Builder, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := waiter(shell, exe, args, 4242, []string{"PATH=/usr/bin:/bin", envStage + "=old"})
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close(); cmd.Process.Kill(); cmd.Wait() })
	return cmd, &out, w
}

func TestWaiterShell(t *testing.T) {
	printf, err := exec.LookPath("printf")
	if err != nil || filepath.Base(printf) != "printf" {
		t.Skip("skipping: no printf program")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("skipping: no /bin/sh")
	}
	// Arguments reach the program as they are: spaces, quotes, $, globs,
	// empty ones, a leading dash.
	args := []string{"kiln", "%s|", "a b", "$HOME", `"q" 'r'`, "*", "", "-x", "; exit 3"}
	cmd, out, w := startWaiter(t, "/bin/sh", printf, args)
	if cmd.Args[0] != "/bin/sh" {
		t.Fatalf("the waiter is %q, want the shell", cmd.Args)
	}
	for _, want := range []string{envStage + "=" + stageInside, envParent + "=4242"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("the waiter's environment %q lacks %s", cmd.Env, want)
		}
	}
	if slices.Contains(cmd.Env, envStage+"=old") {
		t.Errorf("the waiter's environment %q keeps the old stage", cmd.Env)
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := `a b|$HOME|"q" 'r'|*||-x|; exit 3|`; out.String() != want {
		t.Errorf("the program printed %q, want %q", out.String(), want)
	}
}

func TestWaiterShellNoMaps(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("skipping: no /bin/sh")
	}
	marker := filepath.Join(t.TempDir(), "ran")
	// The write end closed without a line (the parent failed): the
	// program never runs.
	cmd, out, w := startWaiter(t, "/bin/sh", "/usr/bin/touch", []string{"kiln", marker})
	w.Close()
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 {
		t.Errorf("without a line: %v (%s), want exit status 125", err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the program ran though the maps were not written")
	}
}

func TestWaiterWithoutShell(t *testing.T) {
	for _, tc := range []struct{ name, shell, exe string }{
		{"no shell", "/nonexistent/sh", "/bin/true"},
		{"no executable", "/bin/sh", ""},
		{"executable gone", "/bin/sh", "/nonexistent/kiln (deleted)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := waiter(tc.shell, tc.exe, []string{"kiln", "build", "."}, 1, []string{envParent + "=9"})
			if cmd.Path != "/proc/self/exe" || !slices.Equal(cmd.Args, []string{"kiln", "build", "."}) {
				t.Errorf("waiter: %s %q, want /proc/self/exe with the arguments", cmd.Path, cmd.Args)
			}
			if !slices.Equal(cmd.Env, []string{envStage + "=" + stageWait}) {
				t.Errorf("waiter's environment: %q, want only the wait stage", cmd.Env)
			}
		})
	}
}
