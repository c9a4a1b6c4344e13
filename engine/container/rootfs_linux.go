package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/rootless"
)

// rootfs builds a container's root filesystem under dir, in the init's
// private mount namespace.
type rootfs struct {
	dir     string
	root    int          // r.dir, open during setup
	stubs   []string     // mountpoints created, relative to dir
	parents []stubParent // directories they were created in
}

// mountRoot mounts the snapshot's mounts on r.dir.
func (r *rootfs) mountRoot(mounts []engine.Mount) error {
	if len(mounts) == 0 {
		return errors.New("no root filesystem mount")
	}
	for _, m := range mounts {
		target := r.dir
		if m.Target != "" && m.Target != "/" {
			return fmt.Errorf("root filesystem mount with target %q: only the root is supported", m.Target)
		}
		if err := mountOne(m, target); err != nil {
			return err
		}
	}
	return nil
}

// mountOne performs m on target (a host path), always nodev: a device
// node a layer, a cache or a host directory carries is data, never a
// device the container can open. (The container's own /dev is a tmpfs
// mounted apart.)
func mountOne(m engine.Mount, target string) error {
	flags, data := parseOptions(m.Options)
	flags |= unix.MS_NODEV
	switch m.Type {
	case "bind", "rbind":
		return bindTree(m.Source, target, flags)
	case "overlay":
		data = rootless.OverlayOptions(data)
		// One lowerdir+ parameter per layer, with no page limit; before
		// Linux 6.8, mount(2) below.
		if ok, err := mountOverlay(target, flags, data); ok {
			return err
		}
		// A long lowerdir list can pass the page-size limit of mount
		// data: mount from the layers' common parent with relative
		// paths, as containerd does.
		if len(data) > unix.Getpagesize()-512 {
			if short, dir, ok := relativeOverlay(data); ok {
				return mountIn(dir, m.Source, target, m.Type, flags, short)
			}
		}
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, data); err != nil {
		return &mountError{op: "mount " + m.Type, source: m.Source, target: target, data: data, err: err}
	}
	return nil
}

func mountIn(dir, source, target, fstype string, flags uintptr, data string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	defer unix.Chdir(wd) //nolint:errcheck // best effort; the init chdirs again later
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &mountError{op: "mount " + fstype, source: source, target: target, data: data, err: err}
	}
	return nil
}

// relativeOverlay rewrites lowerdir/upperdir/workdir to paths relative to
// their common parent directory.
func relativeOverlay(data string) (string, string, bool) {
	var paths []string
	opts := strings.Split(data, ",")
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			paths = append(paths, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			paths = append(paths, v)
		}
	}
	if len(paths) == 0 {
		return "", "", false
	}
	common := filepath.Dir(paths[0])
	for _, p := range paths {
		for !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
			if common == "/" {
				return "", "", false
			}
		}
	}
	short, _ := rewriteOverlayPaths(data, func(_, p string) (string, error) {
		return strings.TrimPrefix(p, common+"/"), nil
	})
	return short, common, true
}

// rewriteOverlayPaths returns the overlay options data with each path of
// its lowerdir, upperdir and workdir options replaced by what fn returns
// for it (given the option's name).
func rewriteOverlayPaths(data string, fn func(key, path string) (string, error)) (string, error) {
	opts := strings.Split(data, ",")
	for i, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			ls := strings.Split(v, ":")
			for j := range ls {
				p, err := fn(k, ls[j])
				if err != nil {
					return "", err
				}
				ls[j] = p
			}
			opts[i] = k + "=" + strings.Join(ls, ":")
		case "upperdir", "workdir":
			p, err := fn(k, v)
			if err != nil {
				return "", err
			}
			opts[i] = k + "=" + p
		}
	}
	return strings.Join(opts, ","), nil
}

var mountFlags = map[string]uintptr{
	"ro":          unix.MS_RDONLY,
	"nosuid":      unix.MS_NOSUID,
	"nodev":       unix.MS_NODEV,
	"noexec":      unix.MS_NOEXEC,
	"relatime":    unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
	"bind":        unix.MS_BIND,
	"rbind":       unix.MS_BIND | unix.MS_REC,
}

func parseOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if o == "rw" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			flags |= f
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// mountError is a failed mount(2), with everything needed to see why.
type mountError struct {
	op, source, target, data string
	err                      error
}

func (e *mountError) Error() string {
	s := e.op
	if e.source != "" {
		s += " " + e.source
	}
	s += " on " + e.target
	if e.data != "" {
		s += " (" + e.data + ")"
	}
	return s + ": " + e.err.Error()
}

func (e *mountError) Unwrap() error { return e.err }

// mountpoint makes sure the container path p exists, as a directory (or
// as an empty file when file is set), resolved inside the root
// filesystem, and returns an O_PATH descriptor of it and its resolved
// path. What it creates is recorded as a stub, to be removed from the
// writable layer. With noFollow, a symlink on the path is refused.
func (r *rootfs) mountpoint(p string, file, noFollow bool) (int, string, error) {
	fd, rel, err := walk(r.root, p, walkOptions{create: true, file: file, noFollow: noFollow, created: r.created})
	if err != nil {
		return -1, "", fmt.Errorf("mountpoint %s: %w", p, err)
	}
	return fd, rel, nil
}

// created records the stub name made in the directory parentFd, at
// parent in the root filesystem, and the times of that directory when it
// is not a stub itself. Mountpoints inside the container's own /dev tmpfs
// never reach the writable layer.
func (r *rootfs) created(parent string, parentFd int, name string) {
	rel := path.Join(parent, name)
	if strings.HasPrefix(rel, "dev/") {
		return
	}
	if !slices.Contains(r.stubs, parent) {
		var st unix.Stat_t
		if err := unix.Fstat(parentFd, &st); err == nil {
			r.parents = append(r.parents, stubParent{Path: parent, Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Mode: st.Mode, UID: st.Uid, GID: st.Gid})
		}
	}
	r.stubs = append(r.stubs, rel)
}

// The kernel paths Docker hides from containers, and those it makes
// read-only.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// mqueueMagic is the f_type of an mqueue filesystem (linux/magic.h).
const mqueueMagic = 0x19800202

// devices are the nodes of the container's minimal /dev.
var devices = []struct {
	name         string
	major, minor uint32
}{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
	{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
}

// setup mounts /proc, /dev, /sys, the caller's mounts and, for the
// host network, the host's resolv.conf and hosts, then masks paths.
// Every target is resolved inside the root filesystem and mounted on
// through its descriptor.
func (r *rootfs) setup(cfg initConfig) error {
	root, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the root filesystem: %w", err)
	}
	r.root = root
	defer unix.Close(root)

	const nsd = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	// kernel mounts a kernel filesystem of type magic on p, which the
	// image must not make a symlink, and returns the new mount's root.
	kernel := func(p, fstype, source string, flags uintptr, data string, magic int64) (int, error) {
		fd, rel, err := r.mountpoint(p, false, true)
		if err != nil {
			return -1, err
		}
		defer unix.Close(fd)
		if err := unix.Mount(source, fdPath(fd), fstype, flags, data); err != nil {
			return -1, &mountError{op: "mount " + fstype, source: source, target: p, data: data, err: err}
		}
		return mountRootAt(root, rel, p, magic)
	}
	proc, err := kernel("/proc", "proc", "proc", nsd, "", unix.PROC_SUPER_MAGIC)
	if err != nil {
		return err
	}
	defer unix.Close(proc)
	dev, err := kernel("/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k", unix.TMPFS_MAGIC)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, d := range devices {
		if cfg.UserNS || rootless.Inside() {
			// No real device can be made in a user namespace (nor used
			// from its tmpfs): the host's are bound instead, as rootless
			// Podman does.
			if err := bindDevice(dev, d.name); err != nil {
				return err
			}
			continue
		}
		if err := unix.Mknodat(dev, d.name, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d.name, err)
		}
		if err := unix.Fchmodat(dev, d.name, 0o666, 0); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d.name, err)
		}
	}
	for link, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore",
	} {
		if err := unix.Symlinkat(target, dev, link); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", link, err)
		}
	}
	pts := "newinstance,ptmxmode=0666,mode=0620,gid=5"
	if !rootless.GIDMapped(5) {
		pts = "newinstance,ptmxmode=0666,mode=0620" // rootless without subordinate ids: no group tty
	}
	for _, m := range []struct {
		p, fstype, source string
		flags             uintptr
		data              string
		magic             int64
	}{
		{"/dev/pts", "devpts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, pts, unix.DEVPTS_SUPER_MAGIC},
		{"/dev/shm", "tmpfs", "shm", nsd, "mode=1777,size=65536k", unix.TMPFS_MAGIC},
		{"/dev/mqueue", "mqueue", "mqueue", nsd, "", mqueueMagic},
	} {
		fd, err := kernel(m.p, m.fstype, m.source, m.flags, m.data, m.magic)
		if err != nil {
			return err
		}
		unix.Close(fd)
	}
	sys, err := kernel("/sys", "sysfs", "sysfs", nsd|unix.MS_RDONLY, "", unix.SYSFS_MAGIC)
	if err != nil {
		// Fall back to a read-only bind of the host's /sys.
		fd, rel, serr := r.mountpoint("/sys", false, true)
		if serr != nil {
			return errors.Join(err, serr)
		}
		berr := mountOne(engine.Mount{Type: "rbind", Source: "/sys", Options: []string{"ro", "nosuid", "nodev", "noexec"}}, fdPath(fd))
		unix.Close(fd)
		if berr != nil {
			return errors.Join(err, berr)
		}
		if sys, berr = mountRootAt(root, rel, "/sys", unix.SYSFS_MAGIC); berr != nil {
			return errors.Join(err, berr)
		}
	}
	defer unix.Close(sys)
	if cfg.Network == engine.NetworkHost {
		for _, f := range []string{"/etc/resolv.conf", "/etc/hosts"} {
			if _, err := os.Stat(f); err != nil {
				continue
			}
			m := engine.Mount{Type: "bind", Source: f, Target: f, Options: []string{"ro", "nosuid", "nodev", "noexec"}}
			if err := r.bind(m); err != nil {
				return err
			}
		}
	}
	for i, m := range cfg.Mounts {
		if p, ok := cfg.Prepared[i]; ok {
			if err := r.attachPrepared(m, p); err != nil {
				return err
			}
		} else if err := r.bind(m); err != nil {
			return err
		}
	}
	return mask(proc, sys, dev)
}

// mountRootAt opens the root of the mount just made at rel (resolved,
// relative to root) and checks that it is a filesystem of type magic.
func mountRootAt(root int, rel, p string, magic int64) (int, error) {
	fd, err := openBeneath(root, rel, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s after mounting it: %w", p, err)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != magic {
		unix.Close(fd)
		return -1, fmt.Errorf("opening %s after mounting it: not the filesystem mounted (%v)", p, err)
	}
	return fd, nil
}

// bind mounts the host path m.Source on the container path m.Target.
func (r *rootfs) bind(m engine.Mount) error {
	file := false
	switch m.Type {
	case "bind", "rbind", "":
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount on %s: %w", m.Target, err)
		}
		file = !fi.IsDir()
		m.Type = "rbind"
	case "tmpfs", "overlay":
		// A read-only overlay of layer directories is a toolbox image.
	default:
		return fmt.Errorf("mount on %s: unsupported type %q (use bind, tmpfs or overlay)", m.Target, m.Type)
	}
	fd, _, err := r.mountpoint(m.Target, file, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return mountOne(m, fdPath(fd))
}

// mask hides and write-protects kernel paths, as Docker does, in the
// procfs and sysfs just mounted (proc, sys), resolved beneath them
// without following links or leaving them. A path the kernel does not
// have is skipped; one that cannot be masked fails the start.
func mask(proc, sys, dev int) error {
	null, err := unix.Openat(dev, "null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/null: %w", err)
	}
	defer unix.Close(null)
	beneath := func(p string) (int, string, error) {
		if rel, ok := strings.CutPrefix(p, "/proc/"); ok {
			fd, err := openBeneath(proc, rel, unix.RESOLVE_NO_XDEV)
			return fd, rel, err
		}
		rel := strings.TrimPrefix(p, "/sys/")
		fd, err := openBeneath(sys, rel, unix.RESOLVE_NO_XDEV)
		return fd, rel, err
	}
	for _, p := range maskedPaths {
		fd, _, err := beneath(p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &mountError{op: "mask", target: p, err: err}
		}
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = unix.Mount("tmpfs", fdPath(fd), "tmpfs", unix.MS_RDONLY, "size=0")
			} else {
				err = unix.Mount(fdPath(null), fdPath(fd), "", unix.MS_BIND, "")
			}
		}
		unix.Close(fd)
		if err != nil {
			return &mountError{op: "mask", target: p, err: err}
		}
	}
	for _, p := range readonlyPaths {
		fd, _, err := beneath(p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return &mountError{op: "remount read-only", target: p, err: err}
		}
		err = bindTree(fdPath(fd), fdPath(fd), unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
		unix.Close(fd)
		if err != nil {
			return &mountError{op: "remount read-only", target: p, err: err}
		}
	}
	return nil
}

// bindTree mounts a copy of the mount tree at source on target, with the
// read-only, nosuid, nodev and noexec flags among flags set on all of it.
// The copy is made read-only before it is attached: through /proc/self/fd
// paths, a remount would find the mount under the new one.
func bindTree(source, target string, flags uintptr) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return &mountError{op: "bind", source: source, target: target, err: err}
	}
	defer unix.Close(tree)
	var attr unix.MountAttr
	for ms, ma := range map[uintptr]uint64{
		unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
	} {
		if flags&ms != 0 {
			attr.Attr_set |= ma
		}
	}
	if attr.Attr_set != 0 {
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return &mountError{op: "set attributes (ro, nosuid, nodev, noexec) of", source: source, target: target, err: err}
		}
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
		return &mountError{op: "bind", source: source, target: target, err: err}
	}
	return nil
}

// pivotRoot makes dir the root and detaches the old one, the way runc
// does it: pivot_root(".", ".") stacks the old root on top of the new
// one, and a lazy unmount of "." then removes it.
func pivotRoot(dir string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening new root: %w", err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("entering new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", dir, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("entering old root: %w", err)
	}
	// Keep the unmount from propagating anywhere.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("entering new root: %w", err)
	}
	return nil
}

// loopbackUp brings up lo in a new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up lo: %w", err)
	}
	return nil
}
