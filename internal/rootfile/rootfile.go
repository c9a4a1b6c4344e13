package rootfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is why a file that is not a regular file is refused.
var ErrNotRegular = errors.New("not a regular file")

// Read returns the content of name (a path inside root, "/" being root)
// when it is a regular file of at most max bytes. Symlinks are followed
// inside root, never out of it; magic links (/proc/*/fd) are refused.
// Errors name the file as the root sees it.
func Read(root, name string, max int64) ([]byte, error) {
	shown := "/" + strings.TrimLeft(name, "/")
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	// O_PATH opens nothing: a FIFO or a device is not opened, only found.
	fd, err := unix.Openat2(dir, shown, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: shown, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: shown, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is %w (%s)", shown, ErrNotRegular, kind(st.Mode))
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", shown, max)
	}
	// Open that very file for reading, through its descriptor: whatever
	// the path now leads to, this is the regular file just checked.
	rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: shown, Err: err}
	}
	f := os.NewFile(uintptr(rfd), shown)
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", shown, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", shown, max)
	}
	return data, nil
}

// kind names a file type of st_mode.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "of mode " + strconv.FormatUint(uint64(mode&unix.S_IFMT), 8)
}
