package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// rootfs builds a container's root filesystem under dir, in the init's
// private mount namespace.
type rootfs struct {
	dir     string
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
		bflags := uintptr(unix.MS_BIND | unix.MS_REC)
		if err := unix.Mount(m.Source, target, "", bflags, ""); err != nil {
			return &mountError{op: "bind", source: m.Source, target: target, err: err}
		}
		// A bind takes flags only when remounted, and then only its
		// top mount: mount_setattr sets nodev on the whole tree.
		nodev := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV}
		if err := unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE, nodev); err == unix.ENOSYS {
			// Before Linux 5.12.
			rflags := uintptr(unix.MS_BIND|unix.MS_REMOUNT) | flags&(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
			if err := unix.Mount("", target, "", rflags, ""); err != nil {
				return &mountError{op: "remount nodev", target: target, err: err}
			}
		} else if err != nil {
			return &mountError{op: "set nodev on", target: target, err: err}
		}
		if flags&unix.MS_RDONLY != 0 {
			rflags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | flags&(unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
			if err := unix.Mount("", target, "", rflags, ""); err != nil {
				return &mountError{op: "remount read-only", target: target, err: err}
			}
		}
		return nil
	case "overlay":
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
	rel := func(p string) string { return strings.TrimPrefix(p, common+"/") }
	for i, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			ls := strings.Split(v, ":")
			for j := range ls {
				ls[j] = rel(ls[j])
			}
			opts[i] = k + "=" + strings.Join(ls, ":")
		case "upperdir", "workdir":
			opts[i] = k + "=" + rel(v)
		}
	}
	return strings.Join(opts, ","), common, true
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

// resolve returns the host path of the container path p, following
// symlinks as if r.dir were the root, so that no symlink in an image can
// point a mount outside the root filesystem. Components that do not
// exist yet are kept as they are.
func (r *rootfs) resolve(p string) (string, error) {
	var out string // resolved, relative to r.dir, always clean
	rest := strings.Split(filepath.Clean("/"+p), "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			out = filepath.Dir("/" + out)[1:]
			continue
		}
		next := filepath.Join(out, c)
		fi, err := os.Lstat(filepath.Join(r.dir, next))
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			out = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("resolving %s in the root filesystem: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(r.dir, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			out = ""
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(r.dir, out), nil
}

// mountpoint makes sure the container path p exists, as a directory (or
// as an empty file when file is set), and returns its host path. What it
// creates is recorded as a stub, to be removed from the writable layer.
func (r *rootfs) mountpoint(p string, file bool) (string, error) {
	host, err := r.resolve(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(host); err == nil {
		return host, nil
	}
	// Record every component this creates, and the times of the
	// directory it is created in, which the creation changes.
	rel, _ := filepath.Rel(r.dir, host)
	created := []string{rel}
	parent := filepath.Dir(rel)
	for ; parent != "."; parent = filepath.Dir(parent) {
		if _, err := os.Lstat(filepath.Join(r.dir, parent)); err == nil {
			break
		}
		created = append(created, parent)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(r.dir, parent), &st); err == nil && !strings.HasPrefix(rel, "dev/") {
		r.parents = append(r.parents, stubParent{Path: parent, Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Mode: st.Mode, UID: st.Uid, GID: st.Gid})
	}
	if file {
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return "", fmt.Errorf("creating mountpoint /%s: %w", rel, err)
		}
		f, err := os.OpenFile(host, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", fmt.Errorf("creating mountpoint /%s: %w", rel, err)
		}
		f.Close()
	} else if err := os.MkdirAll(host, 0o755); err != nil {
		return "", fmt.Errorf("creating mountpoint /%s: %w", rel, err)
	}
	// Mountpoints inside the container's own /dev tmpfs never reach the
	// writable layer.
	if !strings.HasPrefix(rel, "dev/") {
		r.stubs = append(r.stubs, created...)
	}
	return host, nil
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
func (r *rootfs) setup(cfg initConfig) error {
	const nsd = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	mnt := func(p, fstype, source string, flags uintptr, data string) error {
		host, err := r.mountpoint(p, false)
		if err != nil {
			return err
		}
		if err := unix.Mount(source, host, fstype, flags, data); err != nil {
			return &mountError{op: "mount " + fstype, source: source, target: p, data: data, err: err}
		}
		return nil
	}
	if err := mnt("/proc", "proc", "proc", nsd, ""); err != nil {
		return err
	}
	if err := mnt("/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	dev, _ := r.resolve("/dev")
	for _, d := range devices {
		p := filepath.Join(dev, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d.name, err)
		}
		if err := unix.Chmod(p, 0o666); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", d.name, err)
		}
	}
	for link, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore",
	} {
		if err := os.Symlink(target, filepath.Join(dev, link)); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", link, err)
		}
	}
	if err := mnt("/dev/pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return err
	}
	if err := mnt("/dev/shm", "tmpfs", "shm", nsd, "mode=1777,size=65536k"); err != nil {
		return err
	}
	if err := mnt("/dev/mqueue", "mqueue", "mqueue", nsd, ""); err != nil {
		return err
	}
	if err := mnt("/sys", "sysfs", "sysfs", nsd|unix.MS_RDONLY, ""); err != nil {
		// Fall back to a read-only bind of the host's /sys.
		host, _ := r.resolve("/sys")
		if berr := mountOne(engine.Mount{Type: "rbind", Source: "/sys", Options: []string{"ro", "nosuid", "nodev", "noexec"}}, host); berr != nil {
			return errors.Join(err, berr)
		}
	}
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
	for _, m := range cfg.Mounts {
		if err := r.bind(m); err != nil {
			return err
		}
	}
	return r.mask()
}

// bind mounts the host path m.Source on the container path m.Target.
func (r *rootfs) bind(m engine.Mount) error {
	if m.Type != "bind" && m.Type != "rbind" && m.Type != "" {
		// tmpfs, or a read-only overlay of layer directories (a toolbox
		// image).
		if m.Type == "tmpfs" || m.Type == "overlay" {
			host, err := r.mountpoint(m.Target, false)
			if err != nil {
				return err
			}
			return mountOne(m, host)
		}
		return fmt.Errorf("mount on %s: unsupported type %q (use bind, tmpfs or overlay)", m.Target, m.Type)
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("bind mount on %s: %w", m.Target, err)
	}
	host, err := r.mountpoint(m.Target, !fi.IsDir())
	if err != nil {
		return err
	}
	m.Type = "rbind"
	return mountOne(m, host)
}

// mask hides and write-protects kernel paths, as Docker does.
func (r *rootfs) mask() error {
	null := filepath.Join(r.dir, "dev/null")
	for _, p := range maskedPaths {
		host := filepath.Join(r.dir, p)
		fi, err := os.Stat(host)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", host, "tmpfs", unix.MS_RDONLY, "size=0")
		} else {
			err = unix.Mount(null, host, "", unix.MS_BIND, "")
		}
		if err != nil {
			return &mountError{op: "mask", target: p, err: err}
		}
	}
	for _, p := range readonlyPaths {
		host := filepath.Join(r.dir, p)
		if _, err := os.Stat(host); err != nil {
			continue
		}
		if err := unix.Mount(host, host, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return &mountError{op: "bind", target: p, err: err}
		}
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := unix.Mount(host, host, "", flags, ""); err != nil {
			return &mountError{op: "remount read-only", target: p, err: err}
		}
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
