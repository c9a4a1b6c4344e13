package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Merge copies lowers, layer directories in overlay form (base first), into
// dst so that dst becomes the merged root file system, as overlayfs would
// show it. A whiteout removes its path and is not copied; an opaque
// directory first loses what lower layers put in it; any other entry replaces
// what is at its path, except that a directory merges into a directory.
// Mode, owner, extended attributes (but not trusted.overlay.*), mtimes,
// symlinks, devices, fifos and hardlinks within one lower are preserved.
func Merge(ctx context.Context, dst string, lowers []string) error {
	m := &merger{root: newRoot(dst)}
	for _, lower := range lowers {
		clear(m.links)
		if err := m.merge(ctx, lower); err != nil {
			return fmt.Errorf("merge layer %s into %s: %w", lower, dst, err)
		}
	}
	if err := m.root.setDirTimes(); err != nil {
		return fmt.Errorf("merge layers into %s: %w", dst, err)
	}
	return nil
}

type merger struct {
	root  *root
	links map[devIno]string // dst path of each multiply linked inode of the current lower
	x     xattrReader
}

func (m *merger) merge(ctx context.Context, lower string) error {
	var st unix.Stat_t
	if err := lstat(lower, &st); err != nil {
		return err
	}
	if !isDir(&st) {
		return fmt.Errorf("%s is not a directory", lower)
	}
	if m.links == nil {
		m.links = make(map[devIno]string)
	}
	if err := m.copy(lower, ".", &st); err != nil {
		return err
	}
	return m.walk(ctx, lower, ".")
}

// walk merges the entries below the directory full, whose relative path is
// rel.
func (m *merger) walk(ctx context.Context, full, rel string) error {
	ents, err := readDir(full)
	if err != nil {
		return err
	}
	for i := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &ents[i]
		name := join(rel, e.name)
		p := full + "/" + e.name
		if fileType(&e.st) == unix.S_IFSOCK {
			continue
		}
		if err := m.root.parents(name, true); err != nil {
			return err
		}
		if err := m.copy(p, name, &e.st); err != nil {
			return err
		}
		if isDir(&e.st) {
			if err := m.walk(ctx, p, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// copy applies the lower entry p (with lstat result st) to rel in dst.
func (m *merger) copy(p, rel string, st *unix.Stat_t) error {
	dp := m.root.path(rel)
	var dst unix.Stat_t
	exists := true
	if err := lstat(dp, &dst); errors.Is(err, unix.ENOENT) {
		exists = false
	} else if err != nil {
		return err
	}
	if isWhiteout(st) {
		if exists {
			return m.root.remove(rel, &dst)
		}
		return nil
	}
	xattrs, ovl, err := m.x.read(p)
	if err != nil {
		return err
	}
	md := &meta{
		mode:   uint32(st.Mode) & 0o7777,
		uid:    int(st.Uid),
		gid:    int(st.Gid),
		xattrs: xattrs,
		mtime:  st.Mtim,
	}

	typ := fileType(st)
	if typ == unix.S_IFDIR {
		merge := exists && isDir(&dst)
		if exists && !merge {
			if err := m.root.remove(rel, &dst); err != nil {
				return err
			}
		}
		if merge && hasOpaque(ovl) {
			opaque, err := m.x.isOpaque(p)
			if err != nil {
				return err
			}
			if opaque {
				if err := m.clearDir(dp); err != nil {
					return err
				}
			}
		}
		if !merge {
			if err := unix.Mkdir(dp, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: dp, Err: err}
			}
		}
		m.root.times[rel] = st.Mtim
		return applyMeta(dp, typ, md, merge, false, &m.x)
	}

	if exists {
		if err := m.root.remove(rel, &dst); err != nil {
			return err
		}
	}
	if st.Nlink > 1 {
		id := devIno{dev: uint64(st.Dev), ino: st.Ino}
		if first, ok := m.links[id]; ok {
			if err := unix.Linkat(unix.AT_FDCWD, m.root.path(first), unix.AT_FDCWD, dp, 0); err != nil {
				return &os.LinkError{Op: "link", Old: m.root.path(first), New: dp, Err: err}
			}
			return nil
		}
		m.links[id] = rel
	}
	switch typ {
	case unix.S_IFREG:
		if err := copyFile(dp, p, st.Size); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dp); err != nil {
			return &os.LinkError{Op: "symlink", Old: target, New: dp, Err: err}
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknod(dp, typ|0o600, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dp, Err: err}
		}
	case unix.S_IFIFO:
		if err := unix.Mkfifo(dp, 0o600); err != nil {
			return &os.PathError{Op: "mkfifo", Path: dp, Err: err}
		}
	default:
		return fmt.Errorf("%s: unsupported file type %#o", p, typ)
	}
	return applyMeta(dp, typ, md, false, true, &m.x)
}

func hasOpaque(ovl []string) bool {
	for _, name := range ovl {
		if name == overlayXattr("opaque") {
			return true
		}
	}
	return false
}

// clearDir removes everything inside the directory p.
func (m *merger) clearDir(p string) error {
	names, err := readNames(p)
	if err != nil {
		return err
	}
	m.root.forget()
	for _, name := range names {
		if err := os.RemoveAll(p + "/" + name); err != nil {
			return fmt.Errorf("clear opaque directory %s: %w", p, err)
		}
	}
	return nil
}

// copyFile copies the contents of the regular file src to the new file dst.
// Only src's data is copied, found with SEEK_DATA and SEEK_HOLE, and its
// holes stay holes: a huge sparse file in a hostile image cannot fill the
// disk. Data moves with copy_file_range, which may share extents.
func copyFile(dst, src string, size int64) error {
	s, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer d.Close()
	if size > 0 {
		if err := copyData(d, s, size); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
		if err := d.Truncate(size); err != nil { // a hole at the end
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	return d.Close()
}

// copyData copies the data extents of the first size bytes of s to the
// same offsets of d.
func copyData(d, s *os.File, size int64) error {
	sfd, dfd := int(s.Fd()), int(d.Fd())
	for off := int64(0); off < size; {
		start, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return nil // only a hole is left
		}
		if err != nil {
			// No SEEK_DATA here: copy everything.
			_, err := io.Copy(io.NewOffsetWriter(d, off), io.NewSectionReader(s, off, size-off))
			return err
		}
		end, err := unix.Seek(sfd, start, unix.SEEK_HOLE)
		if err != nil {
			return &os.PathError{Op: "lseek SEEK_HOLE", Path: s.Name(), Err: err}
		}
		end = min(end, size)
		for roff, woff := start, start; roff < end; {
			n, err := unix.CopyFileRange(sfd, &roff, dfd, &woff, int(end-roff), 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n == 0 {
				// No copy_file_range between these files: read and write.
				if _, err := io.Copy(io.NewOffsetWriter(d, woff), io.NewSectionReader(s, roff, end-roff)); err != nil {
					return err
				}
				break
			}
		}
		off = end
	}
	return nil
}
