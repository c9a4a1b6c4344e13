package topdir

import "golang.org/x/sys/unix"

// flag is FS_TOPDIR_FL of linux/fs.h (x/sys/unix does not name it).
const flag = 0x00020000

// Mark sets FS_TOPDIR_FL on the directory dir, when its file system has
// the flag and dir does not have it yet, and reports whether dir has it
// now. Every failure (no such flag, not the owner, dir not a directory)
// leaves dir as it was and reports false.
func Mark(dir string) bool {
	fd, flags, err := open(dir)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if flags&flag != 0 {
		return true
	}
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|flag)) == nil
}

// Marked reports whether dir has FS_TOPDIR_FL.
func Marked(dir string) (bool, error) {
	fd, flags, err := open(dir)
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	return flags&flag != 0, nil
}

// open opens the directory dir (not a symlink to one) and reads its
// inode flags; the caller closes fd.
func open(dir string) (fd int, flags uint32, err error) {
	fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	if flags, err = unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, flags, nil
}
