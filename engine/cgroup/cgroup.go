package cgroup

import (
	"fmt"
	"path/filepath"
)

// Limits are the resource limits of a group. A zero field means no limit.
type Limits struct {
	// Pids is the most tasks (processes and threads) the group may hold:
	// pids.max.
	Pids int64
	// Memory is the most memory, in bytes, the group may use. Swap is not
	// allowed past it: on v1 memory.limit_in_bytes and, when the kernel
	// accounts swap, memory.memsw.limit_in_bytes; on v2 memory.max and
	// memory.swap.max=0.
	Memory int64
	// CPUs is how many CPUs' worth of time the group may use per period of
	// 100ms: cpu.cfs_quota_us on v1, cpu.max on v2.
	CPUs float64
}

// Option configures a Manager.
type Option func(*options) error

type options struct {
	mountpoint string
	parent     string
}

// WithMountpoint sets where cgroups are mounted. The default is
// /sys/fs/cgroup.
func WithMountpoint(dir string) Option {
	return func(o *options) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("cgroup mountpoint %q is not an absolute path", dir)
		}
		o.mountpoint = filepath.Clean(dir)
		return nil
	}
}

// WithParent sets the parent group under which kiln's groups are made. It
// is a relative path such as "kiln" or "system.slice/kiln". The default is
// "kiln".
func WithParent(name string) Option {
	return func(o *options) error {
		if name == "" || !filepath.IsLocal(name) || filepath.Clean(name) != name || name == "." {
			return fmt.Errorf("cgroup parent %q is not a clean relative path", name)
		}
		o.parent = name
		return nil
	}
}

func newOptions(opts []Option) (*options, error) {
	o := &options{mountpoint: "/sys/fs/cgroup", parent: "kiln"}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}
