package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/seccompfilter"
)

// TestSeccompBlocksEachSyscall calls every system call of the deny list
// from inside a container (a static probe program, bind-mounted in): each
// fails with EPERM, and an allowed one (getpid) works.
func TestSeccompBlocksEachSyscall(t *testing.T) {
	e := newEnv(t)
	probe := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-o", probe, "./testdata/probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot build the probe: %v\n%s", err, out)
	}
	info, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"/probe", fmt.Sprintf("%d:getpid", info.SyscallNames["getpid"])}
	want := map[string]string{"getpid": "0"}
	for _, name := range seccompfilter.Blocked() {
		if n, ok := info.SyscallNames[name]; ok {
			args = append(args, fmt.Sprintf("%d:%s", n, name))
			want[name] = "1" // EPERM
		}
	}
	// A clone of a new user namespace (CLONE_NEWUSER|SIGCHLD) and clone3.
	args = append(args, fmt.Sprintf("%d:clone-newuser:%d", info.SyscallNames["clone"], 0x10000000|17))
	want["clone-newuser"] = "1"
	if n, ok := info.SyscallNames["clone3"]; ok {
		args = append(args, fmt.Sprintf("%d:clone3", n))
		want["clone3"] = "38" // ENOSYS: C libraries fall back to clone
	}
	r := e.run(context.Background(), engine.Spec{
		Process: engine.Process{Args: args},
		Mounts:  []engine.Mount{{Type: "bind", Source: probe, Target: "/probe", Options: []string{"ro"}}},
	})
	got := map[string]string{}
	s := bufio.NewScanner(strings.NewReader(r.stdout))
	for s.Scan() {
		if name, errno, ok := strings.Cut(s.Text(), " "); ok {
			got[name] = errno
		}
	}
	if len(want) < 20 {
		t.Fatalf("only %d syscalls to check: the deny list does not match this architecture", len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: errno %q, want %s (stderr %q)", name, got[name], w, r.stderr)
		}
	}
}
