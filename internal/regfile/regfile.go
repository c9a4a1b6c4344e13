package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrOutside is wrapped by the error for a name that leads outside its
// directory, through a symbolic link or as an absolute or "../" path.
var ErrOutside = errors.New("outside the directory")

// ErrNotRegular is wrapped by the error for a file that is not a regular
// file: a directory, FIFO, socket or device.
var ErrNotRegular = errors.New("not a regular file")

// Error is a file refused: it names the file, never its content.
type Error struct {
	Path string // the file as the caller named it, joined to its directory
	Dir  string // the directory it must stay in; "" for OpenPath
	Kind string // what the file is ("a named pipe"), for ErrNotRegular
	Err  error  // ErrOutside or ErrNotRegular
}

func (e *Error) Error() string {
	if e.Err == ErrOutside {
		return fmt.Sprintf("%s is a symlink to a path outside %s; kiln reads only files inside it", e.Path, e.Dir)
	}
	return fmt.Sprintf("%s is %s; kiln reads only regular files", e.Path, e.Kind)
}

func (e *Error) Unwrap() error { return e.Err }

// Open opens name, relative to dir, for reading. Links are followed while
// they stay inside dir; a name that leads outside it is an *Error
// wrapping ErrOutside, and a file that is not regular one wrapping
// ErrNotRegular. A missing file is an error wrapping fs.ErrNotExist.
func Open(dir, name string) (*os.File, error) {
	p := filepath.Join(dir, name)
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	f, err := open(dfd, name, p, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_MAGICLINKS)
	if errors.Is(err, unix.EXDEV) {
		return nil, &Error{Path: p, Dir: dir, Err: ErrOutside}
	}
	if e := (*Error)(nil); errors.As(err, &e) {
		e.Dir = dir
	}
	return f, err
}

// ReadFile reads the file Open opens.
func ReadFile(dir, name string) ([]byte, error) {
	f, err := Open(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// OpenInRoot opens name, a path of a root filesystem kiln does not trust
// (an image's /etc/passwd), for reading, as if root were "/": links are
// followed inside root, never out of it, and magic links (/proc/*/fd) are
// refused. A file that is not regular is an *Error wrapping
// ErrNotRegular. Errors name the file as the root sees it ("/etc/passwd").
func OpenInRoot(root, name string) (*os.File, error) {
	shown := "/" + strings.TrimLeft(name, "/")
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dfd)
	return open(dfd, shown, shown, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
}

// ReadInRoot reads the file OpenInRoot opens, which must be at most max
// bytes.
func ReadInRoot(root, name string, max int64) ([]byte, error) {
	f, err := OpenInRoot(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", f.Name(), max)
	}
	return data, nil
}

// OpenPath opens the file at path, which the user named, for reading: its
// links are followed wherever they lead, but a file that is not regular
// is an *Error wrapping ErrNotRegular.
func OpenPath(path string) (*os.File, error) {
	return open(unix.AT_FDCWD, path, path, 0)
}

// ReadPath reads the file OpenPath opens.
func ReadPath(path string) ([]byte, error) {
	f, err := OpenPath(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// open opens name in dirfd, resolved with resolve: first as O_PATH, which
// opens nothing, to check its type, then for reading, non-blocking, and
// only if it is still the same file. p names it in errors.
func open(dirfd int, name, p string, resolve uint64) (*os.File, error) {
	pfd, err := openat2(dirfd, name, unix.O_PATH|unix.O_CLOEXEC, resolve)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	pf := os.NewFile(uintptr(pfd), p)
	defer pf.Close()
	fi, err := pf.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Path: p, Kind: Kind(fi.Mode()), Err: ErrNotRegular}
	}
	want, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("open %s: no device and inode numbers", p)
	}
	fd, err := openat2(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, resolve)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if got.Dev != want.Dev || got.Ino != want.Ino || got.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s: it was replaced while being opened", p)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openat2 is unix.Openat2, retried when interrupted or when a rename
// elsewhere made the kernel give up on a RESOLVE_BENEATH lookup (EAGAIN).
func openat2(dirfd int, name string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, name, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 16 {
			continue
		}
		return fd, err
	}
}

// Kind names the type of a file: "a regular file", "a directory", "a
// symlink", "a named pipe", "a socket", "a character device", "a block
// device", else "an irregular file".
func Kind(mode fs.FileMode) string {
	switch {
	case mode.IsRegular():
		return "a regular file"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeSymlink != 0:
		return "a symlink"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	}
	return "an irregular file"
}

// FS returns the files of dir as an fs.FS whose Open is this package's
// Open: for fs.ReadFile and code written for an fs.FS.
func FS(dir string) fs.FS { return dirFS(dir) }

type dirFS string

func (d dirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := Open(string(d), name)
	if err != nil {
		return nil, err
	}
	return f, nil
}
