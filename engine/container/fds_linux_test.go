package container

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestStdioOnly: both ways of marking descriptors (close_range, and the
// /proc/self/fd sweep for kernels before 5.11) leave stdio alone and
// mark a descriptor opened without O_CLOEXEC.
func TestStdioOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func() error
	}{
		{"close_range", StdioOnly},
		{"sweep", sweepCloseOnExec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0) // no O_CLOEXEC, on purpose
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			stdinFlags, err := unix.FcntlInt(0, unix.F_GETFD, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.mark(); err != nil {
				t.Fatal(err)
			}
			if f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || f&unix.FD_CLOEXEC == 0 {
				t.Errorf("descriptor %d: flags %#x, %v; want FD_CLOEXEC", fd, f, err)
			}
			if f, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != nil || f != stdinFlags {
				t.Errorf("stdin: flags %#x, %v; want them unchanged (%#x)", f, err, stdinFlags)
			}
		})
	}
}
