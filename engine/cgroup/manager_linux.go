package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Manager creates and finds kiln's groups in the hierarchy it found when it
// was made.
type Manager struct {
	version int
	parent  string
	// root is the cgroup2 mountpoint (v2 only).
	root string
	// mounts maps each v1 controller in use to its hierarchy's mountpoint,
	// and hiers lists the distinct mountpoints in v1Controllers order (v1
	// only).
	mounts map[string]string
	hiers  []string
	// unified is, on a hybrid host without the v1 devices controller,
	// the cgroup2 mountpoint where groups get a directory too, for the
	// eBPF device program (v1 only).
	unified string
}

// NewManager finds the cgroup hierarchy: v2 when the mountpoint is a
// cgroup2 filesystem, otherwise the v1 hierarchies mounted below it (a
// hybrid host's unified mount is used only for the device filter, when
// the v1 devices controller is missing).
func NewManager(opts ...Option) (*Manager, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(o.mountpoint, &st); err != nil {
		return nil, fmt.Errorf("finding cgroup hierarchy: statfs %s: %w", o.mountpoint, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return &Manager{version: 2, parent: o.parent, root: o.mountpoint}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("finding cgroup hierarchy: %w", err)
	}
	defer f.Close()
	mounts, err := v1Mounts(f, o.mountpoint)
	if err != nil {
		return nil, fmt.Errorf("finding cgroup hierarchy: %w", err)
	}
	if len(mounts) == 0 {
		return nil, fmt.Errorf("finding cgroup hierarchy: %s is not a cgroup2 filesystem and has no cgroup v1 controllers mounted below it", o.mountpoint)
	}
	m := &Manager{version: 1, parent: o.parent, mounts: mounts}
	for _, c := range v1Controllers {
		if mp, ok := mounts[c]; ok && !slices.Contains(m.hiers, mp) {
			m.hiers = append(m.hiers, mp)
		}
	}
	if _, ok := mounts["devices"]; !ok {
		// The kernel runs a device program of the group's place in the
		// unified hierarchy alongside v1.
		unified := filepath.Join(o.mountpoint, "unified")
		if unix.Statfs(unified, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			m.unified = unified
		}
	}
	return m, nil
}

// Version returns the cgroup version in use: 1 or 2.
func (m *Manager) Version() int { return m.version }

// group returns the (not necessarily existing) group called name.
func (m *Manager) group(name string) *Cgroup {
	c := &Cgroup{name: name, version: m.version, ctrl: make(map[string]string)}
	if m.version == 2 {
		dir := filepath.Join(m.root, m.parent, name)
		c.dirs = []string{dir}
		for _, ctl := range []string{"pids", "memory", "cpu"} {
			c.ctrl[ctl] = dir
		}
		c.bpfDir = dir
		return c
	}
	for _, mp := range m.hiers {
		c.dirs = append(c.dirs, filepath.Join(mp, m.parent, name))
	}
	for ctl, mp := range m.mounts {
		c.ctrl[ctl] = filepath.Join(mp, m.parent, name)
	}
	if m.unified != "" {
		c.bpfDir = filepath.Join(m.unified, m.parent, name)
		c.dirs = append(c.dirs, c.bpfDir)
	}
	return c
}

// Create makes the group called name (a container id) with limits l. It
// fails, with an error wrapping [fs.ErrExist], if the group exists, and
// with one wrapping [errors.ErrUnsupported] if a non-zero limit needs a
// controller the host does not offer.
func (m *Manager) Create(ctx context.Context, name string, l Limits) (*Cgroup, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m.version == 2 {
		if err := m.prepareV2(l); err != nil {
			return nil, err
		}
	} else {
		for _, ctl := range needed(l) {
			if _, ok := m.mounts[ctl]; !ok {
				return nil, fmt.Errorf("setting %s limit: no %s controller mounted: %w", ctl, ctl, errors.ErrUnsupported)
			}
		}
	}
	c := m.group(name)
	if m.version == 1 {
		c.only(append(needed(l), "pids", "devices"))
	}
	var made []string
	for _, dir := range c.dirs {
		err := os.MkdirAll(filepath.Dir(dir), 0o755)
		if err == nil && m.version == 1 && dir == c.ctrl["devices"] {
			parentDevicesV1(filepath.Dir(dir))
		}
		if err == nil {
			err = os.Mkdir(dir, 0o755)
		}
		if err != nil {
			removeDirs(made)
			return nil, fmt.Errorf("creating cgroup %s: %w", name, err)
		}
		made = append(made, dir)
	}
	var err error
	if m.version == 2 {
		err = c.limitV2(l)
	} else {
		err = c.limitV1(l)
	}
	if err != nil {
		removeDirs(made)
		return nil, err
	}
	if c.bpfDir != "" {
		// A kernel that refuses eBPF (no CONFIG_CGROUP_BPF, or kiln
		// itself confined) leaves the group without a filter, which
		// DeviceFilter reports: the caller then drops CAP_MKNOD, and
		// nodev mounts keep nodes from layers unopenable.
		c.bpfFilter = attachDeviceFilter(c.bpfDir) == nil
	}
	return c, nil
}

// only keeps, of a v1 group's hierarchies, those of the controllers
// ctls: every hierarchy is one more directory to make and remove, on the
// path of every container start.
func (c *Cgroup) only(ctls []string) {
	var dirs []string
	for ctl := range c.ctrl {
		if !slices.Contains(ctls, ctl) {
			delete(c.ctrl, ctl)
		}
	}
	for _, dir := range c.dirs {
		for _, d := range c.ctrl {
			if d == dir && !slices.Contains(dirs, dir) {
				dirs = append(dirs, dir)
			}
		}
	}
	if c.bpfDir != "" {
		dirs = append(dirs, c.bpfDir)
	}
	c.dirs = dirs
}

// needed returns the controllers that limits l need.
func needed(l Limits) []string {
	var ctls []string
	if l.Pids > 0 {
		ctls = append(ctls, "pids")
	}
	if l.Memory > 0 {
		ctls = append(ctls, "memory")
	}
	if l.CPUs > 0 {
		ctls = append(ctls, "cpu")
	}
	return ctls
}

// prepareV2 makes the parent group and, from the root down to the parent,
// enables the pids, memory and cpu controllers in each cgroup.subtree_control
// where cgroup.controllers offers them, so that the parent's children get
// them. Failing to enable one is an error only when l needs it: a group
// without the memory controller still works, it just cannot tell OOM kills.
func (m *Manager) prepareV2(l Limits) error {
	need := needed(l)
	dir := m.root
	elems := strings.Split(m.parent, "/")
	for i := 0; ; i++ {
		avail, err := readFields(filepath.Join(dir, "cgroup.controllers"))
		if err != nil {
			return fmt.Errorf("preparing cgroup parent: %w", err)
		}
		enabled, err := readFields(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("preparing cgroup parent: %w", err)
		}
		for _, ctl := range []string{"pids", "memory", "cpu"} {
			if !slices.Contains(avail, ctl) || slices.Contains(enabled, ctl) {
				continue
			}
			err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+ctl)
			if err != nil && slices.Contains(need, ctl) {
				return fmt.Errorf("enabling %s controller: %w", ctl, err)
			}
		}
		if i == len(elems) {
			return nil
		}
		dir = filepath.Join(dir, elems[i])
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup parent: %w", err)
		}
	}
}

// Open returns the existing group called name, in whichever hierarchies it
// is found. It fails with an error wrapping [fs.ErrNotExist] when it is in
// none.
func (m *Manager) Open(name string) (*Cgroup, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	c := m.group(name)
	var found []string
	for _, dir := range c.dirs {
		if _, err := os.Stat(dir); err == nil {
			found = append(found, dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening cgroup %s: %w", name, err)
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("opening cgroup %s: %s: %w", name, c.dirs[0], fs.ErrNotExist)
	}
	c.dirs = found
	for ctl, dir := range c.ctrl {
		if !slices.Contains(found, dir) {
			delete(c.ctrl, ctl)
		}
	}
	return c, nil
}

// List returns the sorted names of the groups under the parent, in any
// hierarchy.
func (m *Manager) List() ([]string, error) {
	parents := []string{filepath.Join(m.root, m.parent)}
	if m.version == 1 {
		parents = parents[:0]
		for _, mp := range m.hiers {
			parents = append(parents, filepath.Join(mp, m.parent))
		}
		if m.unified != "" {
			parents = append(parents, filepath.Join(m.unified, m.parent))
		}
	}
	var names []string
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing cgroups: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// removeDirs removes the (empty) group directories dirs, best effort, to
// undo a failed Create.
func removeDirs(dirs []string) {
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

// validName reports an error unless name can be one directory's name.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("cgroup name %q is not a single path element", name)
	}
	return nil
}
