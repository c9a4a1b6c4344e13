// Package cgroup provides facilities for confining a container's processes
// in a control group: creating it with limits, adding a process, learning
// whether the kernel OOM-killed something in it, killing everything in it,
// and removing it.
//
// A [Manager] finds the cgroup hierarchy once. When the mountpoint (by
// default /sys/fs/cgroup) is a cgroup2 filesystem, groups live at
// <mountpoint>/<parent>/<name> (cgroup v2). Otherwise each v1 controller
// kiln uses (pids, memory, cpu, devices and, when mounted, freezer) has its
// own hierarchy, found in /proc/self/mountinfo, and a group is one directory
// <controller mountpoint>/<parent>/<name> in each of them. A "hybrid" host,
// with v1 controllers plus a cgroup2 mount at <mountpoint>/unified, is
// treated as v1 (its unified mount serves only the device filter, below).
//
// # Lifecycle
//
//	m, err := cgroup.NewManager()
//	cg, err := m.Create(ctx, id, cgroup.Limits{Pids: 1024, Memory: 1 << 30, CPUs: 2})
//	err = cg.Add(pid)             // before the process forks or allocates
//	// … the process runs …
//	oom, err := cg.OOMKilled()    // did the kernel kill something for memory?
//	err = cg.Delete(ctx)          // SIGKILL what is left, then rmdir
//
// On v2 a limit whose controller is not available to the group (not listed
// in the parent's cgroup.controllers, as on a hybrid host's unified mount)
// makes [Manager.Create] fail with an error wrapping [errors.ErrUnsupported];
// limits are never silently ignored. The same holds on v1 when the
// controller's hierarchy is not mounted.
//
// # Devices
//
// Every group gets a device filter (see [Cgroup.DeviceFilter]): every
// device is denied except mknod of character devices and read, write and
// mknod of the usual /dev nodes (null, zero, full, random, urandom, tty,
// console, ptmx, pts, tun). No block device is allowed. On v1 the devices
// controller enforces it. On v2, which has no devices controller, it is an
// eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE, as runc and crun attach)
// attached to the group's directory. A hybrid host whose v1 devices
// controller is missing gets the same program: the group also gets a
// directory in the unified hierarchy (<mountpoint>/unified), and the
// kernel runs the device program of a process's unified cgroup in
// addition to v1's checks.
//
// With a filter in place a container keeps CAP_MKNOD, as Docker's default
// does: it can make character device nodes (package managers and
// debootstrap do, as data for an image), which it can open only when they
// are allowed ones, and no block device node at all. Only when the kernel
// refuses the program (no CONFIG_CGROUP_BPF, or kiln itself confined) does
// a group have no filter; DeviceFilter then reports false and callers drop
// CAP_MKNOD. Either way the container runtime mounts root filesystems and
// every bind, cache and tmpfs mount nodev, so a node a layer carries is
// never a device.
package cgroup
