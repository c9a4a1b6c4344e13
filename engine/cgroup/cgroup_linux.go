package cgroup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroup is one of kiln's groups: a directory in each hierarchy (v1) or in
// the unified one (v2).
type Cgroup struct {
	name    string
	version int
	// dirs holds the group's directory in each hierarchy.
	dirs []string
	// ctrl maps a controller to the directory holding its files.
	ctrl map[string]string
	// bpfDir is the cgroup v2 directory (among dirs) that gets the device
	// program: the group's on v2, its unified one on a hybrid host whose
	// v1 devices controller is missing, else "".
	bpfDir string
	// bpfFilter is set once the device program is attached to bpfDir.
	bpfFilter bool
}

// Name returns the group's name, the container id it was created with.
func (c *Cgroup) Name() string { return c.name }

// DeviceFilter reports whether the kernel filters the group's device
// access: by the v1 devices controller, or by the eBPF device program
// attached to its cgroup v2 directory. When false, callers must keep the
// container from making device nodes some other way, such as dropping
// CAP_MKNOD.
func (c *Cgroup) DeviceFilter() bool {
	_, v1 := c.ctrl["devices"]
	return (c.version == 1 && v1) || c.bpfFilter
}

func (l Limits) validate() error {
	switch {
	case l.Pids < 0:
		return fmt.Errorf("pids limit %d is negative", l.Pids)
	case l.Memory < 0:
		return fmt.Errorf("memory limit %d is negative", l.Memory)
	case l.CPUs < 0:
		return fmt.Errorf("cpu limit %g is negative", l.CPUs)
	}
	return nil
}

// cpuPeriod is the CFS period, in microseconds, that CPU limits use.
const cpuPeriod = 100000

// cpuQuota returns the CFS quota in microseconds per cpuPeriod.
func (l Limits) cpuQuota() int64 {
	return int64(l.CPUs * cpuPeriod)
}

// limitV1 writes the limits and the device filter into a new v1 group.
func (c *Cgroup) limitV1(l Limits) error {
	if l.Pids > 0 {
		if err := writeFile(filepath.Join(c.ctrl["pids"], "pids.max"), strconv.FormatInt(l.Pids, 10)); err != nil {
			return fmt.Errorf("setting pids limit: %w", err)
		}
	}
	if l.Memory > 0 {
		dir := c.ctrl["memory"]
		mem := strconv.FormatInt(l.Memory, 10)
		// memsw (memory+swap) must not be below the memory limit, so
		// it is written second.
		if err := writeFile(filepath.Join(dir, "memory.limit_in_bytes"), mem); err != nil {
			return fmt.Errorf("setting memory limit: %w", err)
		}
		sw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
		if _, err := os.Stat(sw); err == nil {
			if err := writeFile(sw, mem); err != nil {
				return fmt.Errorf("setting memory+swap limit: %w", err)
			}
		}
	}
	if l.CPUs > 0 {
		dir := c.ctrl["cpu"]
		if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)); err != nil {
			return fmt.Errorf("setting cpu limit: %w", err)
		}
		if err := writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(l.cpuQuota(), 10)); err != nil {
			return fmt.Errorf("setting cpu limit: %w", err)
		}
	}
	if dir, ok := c.ctrl["devices"]; ok {
		if err := filterDevicesV1(dir); err != nil {
			return fmt.Errorf("setting device filter: %w", err)
		}
	}
	return nil
}

// filterDevicesV1 gives the new v1 group dir kiln's device rules. A v1
// group starts with a copy of its parent's rules, and Create gives the
// parent kiln's (see parentDevicesV1): each group then only checks that
// it has them, a dozen writes fewer on every container start. A group
// without them (under a parent that could not take them, or was changed
// since) gets them written.
func filterDevicesV1(dir string) error {
	if hasDeviceRules(dir) {
		return nil
	}
	if err := writeDeviceRules(dir); err != nil {
		return err
	}
	if !hasDeviceRules(dir) {
		return fmt.Errorf("%s does not list the rules written", filepath.Join(dir, "devices.list"))
	}
	return nil
}

// parentDevicesV1 gives the v1 parent group dir kiln's device rules, for
// the groups made in it to inherit. Best effort: the kernel refuses to
// deny all in a group with children (other kiln processes' containers),
// and each group checks its own rules anyway.
func parentDevicesV1(dir string) {
	if !hasDeviceRules(dir) {
		_ = writeDeviceRules(dir)
	}
}

// writeDeviceRules denies every device in the v1 group dir, then allows
// those of deviceRules.
func writeDeviceRules(dir string) error {
	if err := writeFile(filepath.Join(dir, "devices.deny"), "a"); err != nil {
		return err
	}
	for _, r := range deviceRules {
		if err := writeFile(filepath.Join(dir, "devices.allow"), r.String()); err != nil {
			return err
		}
	}
	return nil
}

// hasDeviceRules reports whether the v1 group dir denies every device
// but those of deviceRules: its devices.list names exactly them (a group
// that allows all lists "a *:* rwm").
func hasDeviceRules(dir string) bool {
	b, err := readFile(filepath.Join(dir, "devices.list"))
	if err != nil {
		return false
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(got) != len(deviceRules) {
		return false
	}
	for _, r := range deviceRules {
		if !slices.Contains(got, r.String()) {
			return false
		}
	}
	return true
}

// limitV2 writes the limits into a new v2 group, failing when the group
// lacks a controller a limit needs.
func (c *Cgroup) limitV2(l Limits) error {
	dir := c.dirs[0]
	avail, err := readFields(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("setting limits: %w", err)
	}
	for _, ctl := range needed(l) {
		if !slices.Contains(avail, ctl) {
			return fmt.Errorf("setting %s limit: %s controller is not in %s (%q): %w",
				ctl, ctl, filepath.Join(dir, "cgroup.controllers"), strings.Join(avail, " "), errors.ErrUnsupported)
		}
	}
	if l.Pids > 0 {
		if err := writeFile(filepath.Join(dir, "pids.max"), strconv.FormatInt(l.Pids, 10)); err != nil {
			return fmt.Errorf("setting pids limit: %w", err)
		}
	}
	if l.Memory > 0 {
		if err := writeFile(filepath.Join(dir, "memory.max"), strconv.FormatInt(l.Memory, 10)); err != nil {
			return fmt.Errorf("setting memory limit: %w", err)
		}
		// memory.swap.max is missing when the kernel does not account
		// swap, and then there is nothing to forbid.
		sw := filepath.Join(dir, "memory.swap.max")
		if _, err := os.Stat(sw); err == nil {
			if err := writeFile(sw, "0"); err != nil {
				return fmt.Errorf("setting swap limit: %w", err)
			}
		}
	}
	if l.CPUs > 0 {
		v := fmt.Sprintf("%d %d", l.cpuQuota(), cpuPeriod)
		if err := writeFile(filepath.Join(dir, "cpu.max"), v); err != nil {
			return fmt.Errorf("setting cpu limit: %w", err)
		}
	}
	return nil
}

// Add moves the process pid (with all its threads) into the group, in
// every hierarchy.
func (c *Cgroup) Add(pid int) error {
	for _, dir := range c.dirs {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("adding process %d to cgroup %s: %w", pid, c.name, err)
		}
	}
	return nil
}

// Procs returns the sorted ids of the live processes in the group (in any
// hierarchy, on v1). Processes that have exited but not been reaped are not
// listed.
func (c *Cgroup) Procs() ([]int, error) {
	var pids []int
	var missing error
	for _, dir := range c.dirs {
		p, err := readProcs(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, fs.ErrNotExist) {
			// Partly deleted: what is left still counts.
			missing = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing processes of cgroup %s: %w", c.name, err)
		}
		pids = append(pids, p...)
	}
	if missing != nil && len(pids) == 0 && !c.anyExists() {
		return nil, fmt.Errorf("listing processes of cgroup %s: %w", c.name, missing)
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

// anyExists reports whether the group is still in some hierarchy.
func (c *Cgroup) anyExists() bool {
	for _, dir := range c.dirs {
		if _, err := os.Stat(dir); err == nil {
			return true
		}
	}
	return false
}

// OOMKilled reports whether the kernel has killed a process of the group
// because the group ran out of memory. It needs the memory controller
// (kernel 4.13 or later on v1) and otherwise fails with an error wrapping
// [errors.ErrUnsupported].
func (c *Cgroup) OOMKilled() (bool, error) {
	dir, ok := c.ctrl["memory"]
	file := "memory.events"
	if c.version == 1 {
		file = "memory.oom_control"
	}
	if !ok {
		return false, fmt.Errorf("reading oom kills of cgroup %s: no memory controller: %w", c.name, errors.ErrUnsupported)
	}
	path := filepath.Join(dir, file)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && c.version == 2 {
		// The group exists but the memory controller is not
		// enabled in its parent's cgroup.subtree_control.
		return false, fmt.Errorf("reading oom kills of cgroup %s: %w (memory controller not enabled): %w", c.name, err, errors.ErrUnsupported)
	}
	if err != nil {
		return false, fmt.Errorf("reading oom kills of cgroup %s: %w", c.name, err)
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		if k != "oom_kill" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false, fmt.Errorf("reading oom kills of cgroup %s: parsing %s: %w", c.name, path, err)
		}
		return n > 0, nil
	}
	// memory.failcnt only says the limit was hit, not that anything died.
	return false, fmt.Errorf("reading oom kills of cgroup %s: no oom_kill line in %s (kernel before 4.13?): %w", c.name, path, errors.ErrUnsupported)
}

// killTimeout bounds how long Kill waits for the group to empty.
const killTimeout = 10 * time.Second

// Kill sends SIGKILL to every process in the group and waits, up to 10 s,
// until none is left. With cgroup.kill (v2, Linux 5.14) the kernel does it
// atomically; otherwise the group is frozen (v1 freezer or v2
// cgroup.freeze, when there is one) so that nothing forks while each
// process is killed, then thawed so that the signals are delivered, and
// this repeats until the group is empty.
func (c *Cgroup) Kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	return c.kill(ctx)
}

func (c *Cgroup) kill(ctx context.Context) error {
	if c.version == 2 {
		kf := filepath.Join(c.dirs[0], "cgroup.kill")
		if _, err := os.Stat(kf); err == nil {
			if err := writeFile(kf, "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("killing cgroup %s: %w", c.name, err)
			}
			return c.waitEmpty(ctx, nil)
		}
	}
	return c.waitEmpty(ctx, c.killEach)
}

// waitEmpty polls until the group has no process, calling kill (if not
// nil) with the processes each time it finds some. A group already removed
// counts as empty.
func (c *Cgroup) waitEmpty(ctx context.Context, kill func([]int) error) error {
	delay := time.Millisecond
	for {
		pids, err := c.Procs()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("killing cgroup %s: %w", c.name, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if kill != nil {
			if err := kill(pids); err != nil {
				return fmt.Errorf("killing cgroup %s: %w", c.name, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("killing cgroup %s: processes %v remain: %w", c.name, pids, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// killEach freezes the group, sends SIGKILL to each of its processes and
// thaws it.
func (c *Cgroup) killEach(pids []int) error {
	frozen, err := c.freeze()
	if frozen {
		defer c.thaw()
	}
	if err != nil {
		return err
	}
	if frozen {
		// Re-read: nothing can fork now.
		if pids, err = c.Procs(); err != nil {
			return err
		}
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	return nil
}

// freezeWait bounds how long freeze waits for the group to be frozen. A
// task in uninterruptible sleep can keep it freezing; killing then proceeds
// anyway.
const freezeWait = time.Second

// freeze freezes the group if there is a freezer, reporting whether it
// tried (and so thaw must follow).
func (c *Cgroup) freeze() (bool, error) {
	var file, want, state, done string
	if c.version == 1 {
		dir, ok := c.ctrl["freezer"]
		if !ok {
			return false, nil
		}
		file, want = filepath.Join(dir, "freezer.state"), "FROZEN"
		state, done = file, "FROZEN"
	} else {
		file, want = filepath.Join(c.dirs[0], "cgroup.freeze"), "1"
		if _, err := os.Stat(file); err != nil {
			return false, nil
		}
		state, done = filepath.Join(c.dirs[0], "cgroup.events"), "frozen 1"
	}
	if err := writeFile(file, want); errors.Is(err, fs.ErrNotExist) {
		return false, nil // that hierarchy's directory is already gone
	} else if err != nil {
		return false, fmt.Errorf("freezing: %w", err)
	}
	for deadline := time.Now().Add(freezeWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(state)
		if err != nil {
			return true, fmt.Errorf("freezing: %w", err)
		}
		for line := range strings.Lines(string(b)) {
			if strings.TrimSpace(line) == done {
				return true, nil
			}
		}
	}
	return true, nil
}

// thaw undoes freeze, best effort: a group that cannot be thawed is about
// to be removed.
func (c *Cgroup) thaw() {
	if c.version == 1 {
		_ = writeFile(filepath.Join(c.ctrl["freezer"], "freezer.state"), "THAWED")
	} else {
		_ = writeFile(filepath.Join(c.dirs[0], "cgroup.freeze"), "0")
	}
}

// rmdirTimeout bounds how long Delete retries a busy directory.
const rmdirTimeout = 2 * time.Second

// Delete kills every process in the group and removes its directories,
// retrying for up to 2 s while the kernel still counts dying processes in
// it. A group already gone is not an error.
func (c *Cgroup) Delete(ctx context.Context) error {
	kctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	if err := c.kill(kctx); err != nil {
		return fmt.Errorf("deleting cgroup %s: %w", c.name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, rmdirTimeout)
	defer cancel()
	for _, dir := range c.dirs {
		delay := time.Millisecond
		for {
			err := unix.Rmdir(dir)
			if err == nil || err == unix.ENOENT {
				break
			}
			if err != unix.EBUSY {
				return fmt.Errorf("deleting cgroup %s: %w", c.name, &fs.PathError{Op: "rmdir", Path: dir, Err: err})
			}
			select {
			case <-rctx.Done():
				return fmt.Errorf("deleting cgroup %s: %w", c.name, &fs.PathError{Op: "rmdir", Path: dir, Err: err})
			case <-time.After(delay):
			}
			delay = min(2*delay, 50*time.Millisecond)
		}
	}
	return nil
}

// writeFile writes s to the cgroup file path in one write(2), as the
// kernel takes one value per write. The error names the file.
// It uses the system calls alone: an os.File costs four more per file
// (poller registration), and a container start writes a few.
func writeFile(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	_, err = unix.Write(fd, []byte(s))
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readFile reads the small control file at path, as writeFile writes.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = append(b, buf[:n]...)
	}
}

// readFields returns the space-separated words of the file at path.
func readFields(path string) ([]string, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// readProcs parses a cgroup.procs file.
func readProcs(path string) ([]int, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range bytes.Fields(b) {
		pid, err := strconv.Atoi(string(f))
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}
