package container

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlay with the new mount API: each lower
// layer is a "lowerdir+" parameter of its own (Linux 6.8+), so that no
// list of layers has to fit in the one page mount(2) takes, however deep
// the stack. ok is false, with nothing done, where the kernel does not
// know "lowerdir+": the caller falls back to mount(2).
func mountOverlay(target string, flags uintptr, data string) (ok bool, err error) {
	mfd, ok, err := newOverlay(target, flags, data)
	if !ok || err != nil {
		return ok, err
	}
	defer unix.Close(mfd)
	// The target may be a /proc/self/fd link to a directory resolved in
	// the root filesystem: follow it, as mount(2) does.
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
		return true, &mountError{op: "move_mount overlay", target: target, err: err}
	}
	return true, nil
}

// newOverlay makes the overlay of mountOverlay as a detached mount, and
// returns its descriptor; target only names it in errors.
func newOverlay(target string, flags uintptr, data string) (mfd int, ok bool, err error) {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return -1, false, nil
		}
		return -1, false, fmt.Errorf("mount overlay on %s: fsopen: %w", target, err)
	}
	defer unix.Close(fd)
	fail := func(what string, err error) (int, bool, error) {
		return -1, true, &mountError{op: "mount overlay", source: "overlay", target: target, data: what, err: withLog(fd, err)}
	}
	first := true
	for o := range strings.SplitSeq(data, ",") {
		if o == "" {
			continue
		}
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			for l := range strings.SplitSeq(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
					if first && errors.Is(err, unix.EINVAL) {
						return -1, false, nil // before Linux 6.8
					}
					return fail("lowerdir+="+l, err)
				}
				first = false
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return fail(o, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return fail(o, err)
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := unix.FsconfigSetFlag(fd, "ro"); err != nil {
			return fail("ro", err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fail(data, err)
	}
	mfd, err = unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, mountAttrs(flags))
	if err != nil {
		return fail(data, err)
	}
	return mfd, true, nil
}

// mountAttrs turns mount(2) flags into fsmount's mount attributes.
func mountAttrs(flags uintptr) int {
	var a int
	for _, f := range []struct {
		flag uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	} {
		if flags&f.flag != 0 {
			a |= f.attr
		}
	}
	return a
}

// withLog adds to err what the file system context fd logged (overlayfs
// says there which parameter it refused, and why).
func withLog(fd int, err error) error {
	var msgs []string
	buf := make([]byte, 4096)
	for range 16 {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}

// OverlayLayersUnlimited reports whether the kernel takes an overlay's
// lower layers one "lowerdir+" parameter each (Linux 6.8+): then their
// number is bounded by overlayfs alone (500), not by the one page of
// mount(2)'s options. It only asks a file system context, mounting
// nothing.
func OverlayLayersUnlimited() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.FsconfigSetString(fd, "lowerdir+", "/") == nil
}
