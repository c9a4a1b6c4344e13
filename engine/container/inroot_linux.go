package container

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths inside a container's root filesystem are image-controlled: every
// one is resolved inside the root, on file descriptors, so that no
// symlink of the image reaches the host.

// fdPath names the file open as fd for syscalls that take a path, such as
// mount(2). The init reads it in the host's /proc, before pivot_root.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// openBeneath opens p (relative) below the directory dir as an O_PATH
// descriptor, following no symlink at all, plus the RESOLVE_ flags in
// resolve: for paths resolved already, and for paths that hold no link.
func openBeneath(dir int, p string, resolve uint64) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | resolve,
	}
	return unix.Openat2(dir, p, &how)
}

// openParent opens the directory holding p (relative, clean) below dir
// as openBeneath does, and returns it with p's last component.
func openParent(dir int, p string) (int, string, error) {
	parent, base := path.Split(p)
	if parent == "" {
		parent = "."
	}
	fd, err := openBeneath(dir, parent, 0)
	return fd, base, err
}

// walkOptions says what walk does with a missing or linked component.
type walkOptions struct {
	create   bool // create missing components as directories
	file     bool // ... the last as an empty regular file
	noFollow bool // refuse any symlink on the path
	// created is called after each component walk creates, with the
	// resolved path of the directory it was made in (relative to the
	// root, "." for the root) and that directory.
	created func(parent string, parentFd int, name string)
}

// walk resolves the absolute path p inside the directory root as if root
// were "/": symlinks (absolute or relative, and magic links, whose
// targets are only strings here) and ".." never leave it. It returns an
// O_PATH descriptor of what p names and its resolved path relative to
// root. One component at a time is opened with O_NOFOLLOW, so nothing
// outside the root is ever looked up.
func walk(root int, p string, o walkOptions) (int, string, error) {
	dirs := []int{root} // the descriptors of names, after root
	var names []string
	defer func() {
		for _, d := range dirs[1:] {
			unix.Close(d)
		}
	}()
	rest := strings.Split(p, "/")
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(names) > 0 {
				unix.Close(dirs[len(dirs)-1])
				dirs, names = dirs[:len(dirs)-1], names[:len(names)-1]
			}
			continue
		}
		last := isLast(rest)
		cur := dirs[len(dirs)-1]
		fd, err := unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && o.create {
			if last && o.file {
				var f int
				if f, err = unix.Openat(cur, c, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
					unix.Close(f)
				}
			} else {
				err = unix.Mkdirat(cur, c, 0o755)
			}
			if err != nil {
				return -1, "", fmt.Errorf("creating /%s: %w", path.Join(path.Join(names...), c), err)
			}
			if o.created != nil {
				o.created(path.Join(append([]string{"."}, names...)...), cur, c)
			}
			fd, err = unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return -1, "", fmt.Errorf("resolving %s: /%s: %w", p, path.Join(path.Join(names...), c), err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, "", err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err := readlink(fd)
			unix.Close(fd)
			if err != nil {
				return -1, "", err
			}
			if o.noFollow {
				return -1, "", fmt.Errorf("/%s is a symbolic link (to %s): refusing to follow it", path.Join(path.Join(names...), c), target)
			}
			if links++; links > 40 {
				return -1, "", fmt.Errorf("resolving %s: %w", p, unix.ELOOP)
			}
			if strings.HasPrefix(target, "/") {
				for _, d := range dirs[1:] {
					unix.Close(d)
				}
				dirs, names = dirs[:1], nil
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if !last && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return -1, "", fmt.Errorf("resolving %s: /%s: %w", p, path.Join(path.Join(names...), c), unix.ENOTDIR)
		}
		dirs, names = append(dirs, fd), append(names, c)
	}
	rel := path.Join(append([]string{"."}, names...)...)
	if len(dirs) == 1 {
		fd, err := unix.Openat(root, ".", unix.O_PATH|unix.O_CLOEXEC, 0)
		return fd, rel, err
	}
	fd := dirs[len(dirs)-1]
	dirs = dirs[:len(dirs)-1]
	return fd, rel, nil
}

// isLast says whether the components left name no further file.
func isLast(rest []string) bool {
	for _, c := range rest {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

// readlink returns the target of the symlink open (O_PATH|O_NOFOLLOW) as fd.
func readlink(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", fmt.Errorf("reading symbolic link: %w", err)
	}
	return string(buf[:n]), nil
}
