package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// requireRoot skips t unless the test runs as root, which cgroups need.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
}

// newTestManager returns a Manager whose parent group is unique to this
// test and this run, and removes that parent (in every hierarchy) when the
// test ends.
func newTestManager(t *testing.T, opts ...Option) *Manager {
	t.Helper()
	requireRoot(t)
	parent := fmt.Sprintf("kiln-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	m, err := NewManager(append(opts, WithParent(parent))...)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		parents := []string{filepath.Join(m.root, parent)}
		if m.version == 1 {
			parents = parents[:0]
			for _, mp := range m.hiers {
				parents = append(parents, filepath.Join(mp, parent))
			}
			if m.unified != "" {
				parents = append(parents, filepath.Join(m.unified, parent))
			}
		}
		for _, p := range parents {
			if err := unix.Rmdir(p); err != nil && err != unix.ENOENT {
				t.Errorf("removing test parent group: rmdir %s: %v", p, err)
			}
		}
	})
	return m
}

// create makes a group and deletes it when the test ends.
func create(t *testing.T, m *Manager, name string, l Limits) *Cgroup {
	t.Helper()
	c, err := m.Create(t.Context(), name, l)
	if err != nil {
		t.Fatalf("Create(%q, %+v): %v", name, l, err)
	}
	t.Cleanup(func() {
		if err := c.Delete(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return c
}

// proc is a test child process.
type proc struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

// start runs `sh -c 'read x; script' sh args...`, adds it to c, and lets
// it go on by writing its stdin: everything script does happens inside the
// group.
func start(t *testing.T, c *Cgroup, script string, args ...string) *proc {
	t.Helper()
	argv := append([]string{"-c", "read x; " + script, "sh"}, args...)
	p := &proc{cmd: exec.Command("sh", argv...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	if err := c.Add(p.cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	return p
}

// wait waits for p to exit and returns its wait status.
func (p *proc) wait(t *testing.T, timeout time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("process %d still runs after %v; output:\n%s", p.cmd.Process.Pid, timeout, p.out.String())
	}
	var ee *exec.ExitError
	if p.err != nil && !errors.As(p.err, &ee) {
		t.Fatalf("waiting for process: %v", p.err)
	}
	return p.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

func wantSIGKILL(t *testing.T, ws syscall.WaitStatus, out string) {
	t.Helper()
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended with status %#x (exit %d), want killed by SIGKILL; output:\n%s", uint32(ws), ws.ExitStatus(), out)
	}
}

// limitFiles returns the paths of the files that limits l set in c and
// what they must hold.
func limitFiles(m *Manager, c *Cgroup, l Limits) map[string]string {
	if m.Version() == 2 {
		return map[string]string{
			filepath.Join(c.dirs[0], "pids.max"):   fmt.Sprint(l.Pids),
			filepath.Join(c.dirs[0], "memory.max"): fmt.Sprint(l.Memory),
			filepath.Join(c.dirs[0], "cpu.max"):    fmt.Sprintf("%d 100000", l.cpuQuota()),
		}
	}
	files := map[string]string{
		filepath.Join(c.ctrl["pids"], "pids.max"):                fmt.Sprint(l.Pids),
		filepath.Join(c.ctrl["memory"], "memory.limit_in_bytes"): fmt.Sprint(l.Memory),
		filepath.Join(c.ctrl["cpu"], "cpu.cfs_period_us"):        "100000",
		filepath.Join(c.ctrl["cpu"], "cpu.cfs_quota_us"):         fmt.Sprint(l.cpuQuota()),
	}
	if sw := filepath.Join(c.ctrl["memory"], "memory.memsw.limit_in_bytes"); exists(sw) {
		files[sw] = fmt.Sprint(l.Memory)
	}
	return files
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func readFiles(t *testing.T, want map[string]string) map[string]string {
	t.Helper()
	got := make(map[string]string)
	for path := range want {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got[path] = strings.TrimSpace(string(b))
	}
	return got
}

func TestLifecycle(t *testing.T) {
	m := newTestManager(t)
	const name = "life"
	l := Limits{Pids: 64, Memory: 64 << 20, CPUs: 0.5}
	c := create(t, m, name, l)
	if c.Name() != name {
		t.Errorf("Name() = %q, want %q", c.Name(), name)
	}

	want := limitFiles(m, c, l)
	if diff := cmp.Diff(want, readFiles(t, want)); diff != "" {
		t.Errorf("limit files (-want +got):\n%s", diff)
	}
	if m.Version() == 1 {
		for _, ctl := range []string{"pids", "memory", "cpu", "devices"} {
			if _, ok := m.mounts[ctl]; ok && !exists(c.ctrl[ctl]) {
				t.Errorf("no %s group at %s", ctl, c.ctrl[ctl])
			}
		}
		// Hierarchies that no limit needs are not made.
		lean := create(t, m, "lean", Limits{Pids: 10})
		for _, ctl := range []string{"memory", "cpu", "freezer"} {
			if mp, ok := m.mounts[ctl]; ok && mp != m.mounts["pids"] && mp != m.mounts["devices"] {
				if dir := filepath.Join(mp, m.parent, "lean"); exists(dir) {
					t.Errorf("a group with only a pids limit has a %s group at %s", ctl, dir)
				}
			}
		}
		if err := lean.Delete(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := m.Create(t.Context(), name, Limits{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of an existing group: got %v, want an error wrapping fs.ErrExist", err)
	}
	names, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{name}, names); diff != "" {
		t.Errorf("List() (-want +got):\n%s", diff)
	}
	opened, err := m.Open(name)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if diff := cmp.Diff(c.dirs, opened.dirs); diff != "" {
		t.Errorf("Open(%q) dirs (-want +got):\n%s", name, diff)
	}

	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := c.Add(cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	pids, err := c.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{cmd.Process.Pid}, pids); diff != "" {
		t.Errorf("Procs() (-want +got):\n%s", diff)
	}

	if err := c.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	_ = cmd.Wait()
	wantSIGKILL(t, cmd.ProcessState.Sys().(syscall.WaitStatus), "")
	if pids, err := opened.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("Procs() after Kill = %v, %v; want none", pids, err)
	}

	if err := opened.Delete(t.Context()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, dir := range c.dirs {
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Delete, stat %s: %v; want it gone", dir, err)
		}
	}
	names, err = m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("List() after Delete = %q, want none", names)
	}
	if _, err := m.Open(name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open after Delete: got %v, want an error wrapping fs.ErrNotExist", err)
	}
	if _, err := c.Procs(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Procs after Delete: got %v, want an error wrapping fs.ErrNotExist", err)
	}
}

func TestCreateInvalid(t *testing.T) {
	m := newTestManager(t)
	for _, tc := range []struct {
		name  string
		group string
		l     Limits
	}{
		{"empty name", "", Limits{}},
		{"dot dot", "..", Limits{}},
		{"slash", "a/b", Limits{}},
		{"negative pids", "x", Limits{Pids: -1}},
		{"negative memory", "x", Limits{Memory: -1}},
		{"negative cpus", "x", Limits{CPUs: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := m.Create(t.Context(), tc.group, tc.l); err == nil {
				_ = c.Delete(context.Background())
				t.Errorf("Create(%q, %+v) succeeded, want an error", tc.group, tc.l)
			}
		})
	}
	// A limit the kernel rejects names the file and leaves nothing behind.
	_, err := m.Create(t.Context(), "tiny-cpu", Limits{CPUs: 0.001})
	if err == nil || !strings.Contains(err.Error(), "cpu") {
		t.Errorf("Create with a 100us cpu quota: got %v, want an error about the cpu limit", err)
	}
	if _, err := m.Open("tiny-cpu"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed Create, Open: got %v, want fs.ErrNotExist", err)
	}
}

func TestPidsLimit(t *testing.T) {
	m := newTestManager(t)
	c := create(t, m, "pids", Limits{Pids: 5})
	p := start(t, c, `i=0; while [ $i -lt 20 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; wait`)
	// dash gives up at its first failed fork; a shell that retries would
	// keep running, so do not insist on its exit.
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	pids, err := c.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 || len(pids) > 5 {
		t.Errorf("group holds %d processes %v, want 1 to 5; output:\n%s", len(pids), pids, p.out.String())
	}
	if m.Version() == 1 {
		b, err := os.ReadFile(filepath.Join(c.ctrl["pids"], "pids.events"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) == "max 0" {
			t.Errorf("pids.events = %q, want fork failures counted", b)
		}
	}
	if err := c.Delete(t.Context()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still alive after Delete", pid)
		}
	}
	t.Logf("shell output: %s", p.out.String())
}

// alive reports whether process pid exists and is not a zombie (orphans
// wait for whoever reaps them, which may be slow in a sandbox).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z") && !strings.HasPrefix(after, "X")
}

func TestMemoryLimit(t *testing.T) {
	m := newTestManager(t)
	c := create(t, m, "mem", Limits{Memory: 32 << 20})
	if oom, err := c.OOMKilled(); err != nil || oom {
		t.Fatalf("OOMKilled() before running anything = %v, %v; want false, nil", oom, err)
	}
	p := start(t, c, `exec python3 -c "x = 'a' * (200 << 20); print(len(x))"`)
	wantSIGKILL(t, p.wait(t, 30*time.Second), p.out.String())
	oom, err := c.OOMKilled()
	if err != nil || !oom {
		t.Errorf("OOMKilled() = %v, %v; want true, nil", oom, err)
	}
}

// unifiedMount is where a hybrid host (this one, in CI) mounts cgroup2.
const unifiedMount = "/sys/fs/cgroup/unified"

// TestDeviceFilter: a group's processes may make character device nodes
// but not block ones, and may open only the allowed devices (null here,
// not mem), whether the v1 devices controller filters (the default
// hierarchy of a v1 or hybrid host) or the eBPF device program does (the
// v2 code path, on a hybrid host's unified mount, where the v1 controller
// of the root group allows everything: only the program can deny).
func TestDeviceFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default hierarchy", nil},
		{"cgroup2 device program", []Option{WithMountpoint(unifiedMount)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts != nil {
				var st unix.Statfs_t
				if err := unix.Statfs(unifiedMount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
					t.Skipf("%s is not a cgroup2 mount", unifiedMount)
				}
			}
			m := newTestManager(t, tc.opts...)
			if m.version == 2 || m.unified != "" {
				// Why the kernel refuses the program, if it does.
				fd, err := loadDeviceProgram(deviceProgram(deviceRules))
				if err != nil {
					t.Skipf("the kernel refuses eBPF device programs here: %v", err)
				}
				unix.Close(fd)
			}
			c := create(t, m, "dev", Limits{})
			if !c.DeviceFilter() {
				t.Fatal("DeviceFilter() = false")
			}
			checkDeviceFilter(t, c)
		})
	}
}

func checkDeviceFilter(t *testing.T, c *Cgroup) {
	t.Helper()
	dir := t.TempDir()
	p := start(t, c, `mknod "$1/blk" b 7 0 2>/dev/null; echo "block $?"; mknod "$1/chr" c 1 3; echo "char $?"; echo x >"$1/chr"; echo "write $?"; mknod "$1/kmsg" c 1 11; if (true <"$1/kmsg") 2>/dev/null; then echo "kmsg opened"; else echo "kmsg denied"; fi`, dir)
	if ws := p.wait(t, 10*time.Second); ws.ExitStatus() != 0 {
		t.Fatalf("script failed with %#x; output:\n%s", uint32(ws), p.out.String())
	}
	// mknod b fails (EPERM from the device filter); the null device made
	// by mknod c works; /dev/kmsg can be made (any c mknod is allowed) but
	// not opened.
	want := "block 1\nchar 0\nwrite 0\nkmsg denied\n"
	if diff := cmp.Diff(want, p.out.String()); diff != "" {
		t.Errorf("script output (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "blk")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("block device node was made: stat: %v", err)
	}

	// The same mknod b and open of kmsg outside the group work, so the
	// filter is what stopped them.
	if err := unix.Mknod(filepath.Join(dir, "blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Errorf("mknod b outside the group: %v", err)
	}
	if f, err := os.Open(filepath.Join(dir, "kmsg")); err != nil {
		t.Errorf("opening kmsg outside the group: %v", err)
	} else {
		f.Close()
	}
}

// TestDeviceProgram checks the compiled device program instruction by
// instruction for one rule of each kind: its jumps skip exactly the rest
// of the rule.
func TestDeviceProgram(t *testing.T) {
	prog := deviceProgram([]deviceRule{{'c', -1, -1, "m"}, {'b', 7, 0, "rwm"}})
	want := []insn{
		{code: opLoadWord, regs: 2 | 1<<4}, {code: opAnd, regs: 2, imm: 0xffff},
		{code: opLoadWord, regs: 3 | 1<<4}, {code: opShiftR, regs: 3, imm: 16},
		{code: opLoadWord, regs: 4 | 1<<4, off: 4}, {code: opLoadWord, regs: 5 | 1<<4, off: 8},
		// c *:* m
		{code: opJumpNE, regs: 2, off: 3, imm: unix.BPF_DEVCG_DEV_CHAR},
		{code: opJumpSet, regs: 3, off: 2, imm: unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE},
		{code: opMove, imm: 1}, {code: opExit},
		// b 7:0 rwm
		{code: opJumpNE, regs: 2, off: 4, imm: unix.BPF_DEVCG_DEV_BLOCK},
		{code: opJumpNE, regs: 4, off: 3, imm: 7},
		{code: opJumpNE, regs: 5, off: 2, imm: 0},
		{code: opMove, imm: 1}, {code: opExit},
		// deny
		{code: opMove, imm: 0}, {code: opExit},
	}
	if diff := cmp.Diff(want, prog, cmp.AllowUnexported(insn{})); diff != "" {
		t.Errorf("deviceProgram (-want +got):\n%s", diff)
	}
}

func TestDeleteLive(t *testing.T) {
	m := newTestManager(t)
	c := create(t, m, "live", Limits{Pids: 10})
	p := start(t, c, `sleep 100 & sleep 100`)
	// Wait until both sleeps are in.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pids, err := c.Procs()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group holds %v, want sh and two sleeps", pids)
		}
	}
	if err := c.Delete(t.Context()); err != nil {
		t.Fatalf("Delete with live processes: %v", err)
	}
	wantSIGKILL(t, p.wait(t, 5*time.Second), p.out.String())
	for _, dir := range c.dirs {
		if exists(dir) {
			t.Errorf("%s still exists after Delete", dir)
		}
	}
	if err := c.Delete(t.Context()); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

// TestV2 runs the v2 code path on a cgroup2 mount, which on a hybrid host is
// /sys/fs/cgroup/unified with no pids, memory or cpu controller.
func TestV2(t *testing.T) {
	const unified = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(unified, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skipf("%s is not a cgroup2 mount", unified)
	}
	m := newTestManager(t, WithMountpoint(unified))
	if m.Version() != 2 {
		t.Fatalf("Version() = %d, want 2", m.Version())
	}
	avail, err := readFields(filepath.Join(unified, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("missing controllers", func(t *testing.T) {
		for _, tc := range []struct {
			ctl string
			l   Limits
		}{
			{"pids", Limits{Pids: 5}},
			{"memory", Limits{Memory: 32 << 20}},
			{"cpu", Limits{CPUs: 1}},
		} {
			t.Run(tc.ctl, func(t *testing.T) {
				if strings.Contains(" "+strings.Join(avail, " ")+" ", " "+tc.ctl+" ") {
					t.Skipf("the %s controller is available", tc.ctl)
				}
				c, err := m.Create(t.Context(), "nolimit", tc.l)
				if err == nil {
					_ = c.Delete(context.Background())
				}
				if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), tc.ctl) {
					t.Errorf("Create(%+v) = %v, want an error about %s wrapping errors.ErrUnsupported", tc.l, err, tc.ctl)
				}
				if _, err := m.Open("nolimit"); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("failed Create left the group behind: Open: %v", err)
				}
			})
		}
	})

	for _, tc := range []struct {
		name string
		kill func(c *Cgroup) error
	}{
		{"cgroup.kill", (*Cgroup).Kill},
		{"freeze and kill each", func(c *Cgroup) error {
			if !exists(filepath.Join(c.dirs[0], "cgroup.freeze")) {
				t.Skip("no cgroup.freeze")
			}
			return c.waitEmpty(t.Context(), c.killEach)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := create(t, m, "v2", Limits{})
			if !strings.Contains(" "+strings.Join(avail, " ")+" ", " memory ") {
				if _, err := c.OOMKilled(); !errors.Is(err, errors.ErrUnsupported) {
					t.Errorf("OOMKilled() without the memory controller: got %v, want errors.ErrUnsupported", err)
				}
			}
			names, err := m.List()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"v2"}, names); diff != "" {
				t.Errorf("List() (-want +got):\n%s", diff)
			}
			p := start(t, c, `sleep 100 & sleep 100`)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				pids, err := c.Procs()
				if err != nil {
					t.Fatal(err)
				}
				if len(pids) == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("group holds %v, want sh and two sleeps", pids)
				}
			}
			if err := tc.kill(c); err != nil {
				t.Fatalf("kill: %v", err)
			}
			wantSIGKILL(t, p.wait(t, 5*time.Second), p.out.String())
			if pids, err := c.Procs(); err != nil || len(pids) != 0 {
				t.Errorf("Procs() after kill = %v, %v; want none", pids, err)
			}
			if b, err := os.ReadFile(filepath.Join(c.dirs[0], "cgroup.freeze")); err == nil && strings.TrimSpace(string(b)) != "0" {
				t.Errorf("group left frozen: cgroup.freeze = %q", b)
			}
			if err := c.Delete(t.Context()); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if exists(c.dirs[0]) {
				t.Errorf("%s still exists after Delete", c.dirs[0])
			}
		})
	}
}
