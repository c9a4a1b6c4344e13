package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/idrange"
)

// WithUserNS runs every container in a user namespace of its own, on a
// range of host ids that a takes for it and gives back at Delete: root
// in the container is then an unprivileged host id. The root filesystem
// and the bind and overlay mounts are idmapped mounts (Linux 6.8+ for
// overlays of idmapped layers given one by one), so that what a step
// writes as container id N lands on disk as N, exactly as without a user
// namespace.
func WithUserNS(a *idrange.Allocator) Option {
	return func(o *options) error {
		o.userns = a
		return nil
	}
}

// prepareUserNS takes a range for container c and makes, in kiln's own
// user namespace, the idmapped mounts that its init (in a user namespace
// of its own, which cannot make them) attaches: the root filesystem and
// the bind and overlay mounts. It returns the files to pass to the init,
// the first as descriptor next, and fills in cfg. Closing the files is
// the caller's.
func (c *ctr) prepareUserNS(ctx context.Context, cfg *initConfig, next int) (files []*os.File, err error) {
	defer func() {
		if err != nil {
			closeFiles(files)
			files = nil
		}
	}()
	lease, err := c.r.userns.Allocate(ctx)
	if err != nil {
		return nil, err
	}
	c.lease = lease
	ns, err := lease.Held(func(r idrange.Range) (int, error) { return holdUserNS(c.r.init, r) })
	if err != nil {
		return nil, err
	}

	// The init, as an unprivileged host id, reaches its root directory
	// from its working directory, the container's directory (see
	// startOnHeldThread), which it may search but not read, and mounts
	// its in-memory files' tmpfs on a directory of its own there.
	if err := os.Chmod(c.dir, 0o711); err != nil {
		return nil, fmt.Errorf("creating container %s: %w", c.id, err)
	}
	filesDir := filepath.Join(c.dir, "files")
	if err := os.Mkdir(filesDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating container %s: %w", c.id, err)
	}
	if err := os.Chown(filesDir, int(lease.UID), int(lease.GID)); err != nil {
		return nil, fmt.Errorf("creating container %s: %w", c.id, err)
	}
	cfg.Rootdir = "rootfs"

	add := func(m engine.Mount) (int, error) {
		fd, err := idmappedMount(m, ns)
		if err != nil {
			return 0, err
		}
		files = append(files, os.NewFile(uintptr(fd), "mount"))
		return next + len(files) - 1, nil
	}
	for _, m := range cfg.Rootfs {
		n, err := add(m)
		if err != nil {
			return nil, err
		}
		cfg.RootfsFds = append(cfg.RootfsFds, n)
	}
	for i, m := range cfg.Mounts {
		if m.File != nil || m.Type == "tmpfs" {
			continue // made by the init, in its own namespaces
		}
		file := false
		if m.Type != "overlay" {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return nil, fmt.Errorf("bind mount on %s: %w", m.Target, err)
			}
			file = !fi.IsDir()
		}
		n, err := add(m)
		if err != nil {
			return nil, err
		}
		if cfg.Prepared == nil {
			cfg.Prepared = map[int]prepared{}
		}
		cfg.Prepared[i] = prepared{Fd: n, File: file}
	}
	cfg.UserNS = true
	return files, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// userNSAttr is the part of the init's SysProcAttr that puts it in a
// user namespace on r, as its root.
func userNSAttr(a *syscall.SysProcAttr, r idrange.Range) {
	a.Cloneflags |= unix.CLONE_NEWUSER
	a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.UID), Size: idrange.Size}}
	a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(r.GID), Size: idrange.Size}}
	a.GidMappingsEnableSetgroups = true
	a.Credential = &syscall.Credential{Uid: 0, Gid: 0}
}

// holdUserNS returns a descriptor of a new user namespace for idmapped
// mounts: ids 0–65535 on r, as the container's, and 65536 on the host's
// root, so that what overlayfs writes with its mounter's (kiln's)
// credentials in an idmapped upper layer (whiteouts, its work directory)
// has an owner there. The container's own namespace does not map the
// host's root: no process of it can become that id. The namespace lives
// on in the descriptor; the process made to create it ends at once.
func holdUserNS(init string, r idrange.Range) (int, error) {
	cmd := &exec.Cmd{
		Path: init,
		Args: []string{holdArg0},
		Env:  []string{},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: unix.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: int(r.UID), Size: idrange.Size},
				{ContainerID: idrange.Size, HostID: 0, Size: 1},
			},
			GidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: int(r.GID), Size: idrange.Size},
				{ContainerID: idrange.Size, HostID: 0, Size: 1},
			},
		},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return -1, fmt.Errorf("making a user namespace: %w", err)
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return -1, fmt.Errorf("making a user namespace: %w", err)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	stdin.Close() // the process ends
	werr := cmd.Wait()
	if err != nil {
		return -1, fmt.Errorf("making a user namespace: %w", err)
	}
	if werr != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("making a user namespace: %w", werr)
	}
	return fd, nil
}

// hold is the process holdUserNS starts: it waits for stdin to close.
func hold() {
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// idmapTree returns a detached copy of the mount at path, idmapped
// through the user namespace ns, with the attributes of flags.
func idmapTree(path string, ns int, flags uintptr) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, &mountError{op: "bind", source: path, err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | uint64(mountAttrs(flags)), Userns_fd: uint64(ns)}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(tree)
		return -1, &mountError{op: "idmap", source: path, err: err}
	}
	return tree, nil
}

// idmappedMount makes m, a bind or an overlay, as a detached mount whose
// files show through the user namespace ns: a bind is an idmapped copy
// of its source; an overlay is made over idmapped copies of its layers,
// its upper and work directories through one idmapped copy of their
// common parent (overlayfs wants them on one mount).
func idmappedMount(m engine.Mount, ns int) (int, error) {
	flags, data := parseOptions(m.Options)
	flags |= unix.MS_NODEV
	switch m.Type {
	case "bind", "rbind", "":
		return idmapTree(m.Source, ns, flags)
	case "overlay":
	default:
		return -1, fmt.Errorf("mount on %q: type %q is not supported in a user namespace", m.Target, m.Type)
	}
	var layers []int
	defer func() {
		for _, fd := range layers {
			unix.Close(fd)
		}
	}()
	idmap := func(p string) (string, error) {
		fd, err := idmapTree(p, ns, 0)
		if err != nil {
			return "", err
		}
		layers = append(layers, fd)
		return fdPath(fd), nil
	}
	// The upper and work directories through one idmapped copy of their
	// parent.
	var parent, idmapped string
	data, err := rewriteOverlayPaths(data, func(key, p string) (string, error) {
		if key == "lowerdir" {
			return idmap(p)
		}
		if parent == "" {
			parent = filepath.Dir(p)
			var err error
			if idmapped, err = idmap(parent); err != nil {
				return "", err
			}
		}
		if filepath.Dir(p) != parent {
			return "", fmt.Errorf("overlay mount: upperdir and workdir are not in one directory (%s)", p)
		}
		return idmapped + "/" + filepath.Base(p), nil
	})
	if err != nil {
		return -1, err
	}
	target := m.Target
	if target == "" {
		target = "/"
	}
	fd, ok, err := newOverlay(target, flags, data)
	if err != nil {
		return -1, err
	}
	if !ok {
		return -1, fmt.Errorf("overlay mount on %s: a user namespace needs overlayfs's lowerdir+ (Linux 6.8+)", target)
	}
	return fd, nil
}

// attachMount attaches the detached mount fd (from the runtime) on
// target and closes fd.
func attachMount(fd int, target string) error {
	defer unix.Close(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
		return &mountError{op: "attach idmapped mount", target: target, err: err}
	}
	return nil
}

// attachPrepared attaches the mount the runtime made for m on its target
// in the root filesystem.
func (r *rootfs) attachPrepared(m engine.Mount, p prepared) error {
	fd, _, err := r.mountpoint(m.Target, p.File, false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return attachMount(p.Fd, fdPath(fd))
}

// bindDevice makes /dev/name, in the container's /dev open as dev, a
// bind of the host's node: a user namespace may not mknod.
func bindDevice(dev int, name string) error {
	fd, err := unix.Openat(dev, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return fmt.Errorf("creating /dev/%s: %w", name, err)
	}
	unix.Close(fd)
	return bindTree("/dev/"+name, fdPath(dev)+"/"+name, unix.MS_NOSUID|unix.MS_NOEXEC)
}

// chdirThread gives the calling OS thread, which must be locked and
// never unlocked, a working directory of its own: dir.
func chdirThread(dir string) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("starting container init: %w", err)
	}
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("starting container init: %w", err)
	}
	return nil
}
