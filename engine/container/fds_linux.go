package container

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// StdioOnly marks every file descriptor of this process past stdin,
// stdout and stderr close-on-exec, so that a program it execs gets only
// what is passed to it on purpose (exec.Cmd's ExtraFiles, which are
// duplicated without the flag). A descriptor inherited without
// close-on-exec, as CI runners leave them, would otherwise reach a
// container: one open on a host directory is a way out of its root
// (/proc/self/fd/N/..). kiln's main, the container init and the exec
// helper call it first thing.
func StdioOnly() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Before Linux 5.11: mark each open descriptor.
	if serr := sweepCloseOnExec(); serr != nil {
		return fmt.Errorf("marking descriptors close-on-exec: close_range: %w; %w", err, serr)
	}
	return nil
}

// sweepCloseOnExec marks each descriptor listed in /proc/self/fd past
// stdio close-on-exec.
func sweepCloseOnExec() error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing descriptors: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("listing descriptors: %w", err)
	}
	for _, n := range names {
		fd, perr := strconv.Atoi(n)
		if perr != nil || fd < 3 || fd == int(d.Fd()) {
			continue
		}
		// The listing's own descriptor is close-on-exec already, and
		// one closed since the listing gives EBADF.
		if _, ferr := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); ferr != nil && ferr != unix.EBADF {
			return fmt.Errorf("descriptor %d: %w", fd, ferr)
		}
	}
	return nil
}
