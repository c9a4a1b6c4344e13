package layer

import "golang.org/x/sys/unix"

// adviseSequential tells the kernel a file is read once, front to back.
func adviseSequential(fd int) { _ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL) }
