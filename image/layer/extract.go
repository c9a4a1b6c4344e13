package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

// Extract applies the uncompressed layer tar r to dir, which is created if
// missing and is normally empty, leaving the layer in overlay form: an entry
// .wh.NAME becomes a character device 0/0 at NAME, and DIR/.wh..wh..opq
// becomes the attribute trusted.overlay.opaque=y on DIR.
//
// Extract is safe against hostile tars: names are cleaned and a name that
// escapes dir is an error, as is a whiteout named "." or "..". Symlinks are
// never followed, neither in a parent of an entry (an error) nor in the
// target of a hardlink, which must be inside dir. When a name repeats, the
// later entry wins: it replaces a non-directory, and merges into a directory.
// trusted.overlay.* attributes in the tar are ignored. Data after the end of
// the archive is read and discarded, so that a digest-verifying r sees EOF.
func Extract(ctx context.Context, r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract layer: %w", err)
	}
	e := &extractor{root: newRoot(dir)}
	br := bufio.NewReaderSize(r, 64<<10)
	tr := tar.NewReader(br)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("extract layer to %s: read tar: %w", dir, err)
		}
		if err := e.entry(hdr, tr); err != nil {
			return fmt.Errorf("extract layer to %s: entry %q: %w", dir, hdr.Name, err)
		}
	}
	if err := e.root.setDirTimes(); err != nil {
		return fmt.Errorf("extract layer to %s: %w", dir, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return fmt.Errorf("extract layer to %s: read past the end of the tar: %w", dir, err)
	}
	return nil
}

type extractor struct {
	root *root
	buf  []byte
	x    xattrReader
}

// cleanName turns a tar entry name into a clean path relative to the layer
// root, or fails if it escapes it. Leading slashes are dropped.
func cleanName(name string) (string, error) {
	rel := path.Clean(strings.TrimLeft(name, "/"))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errors.New("path escapes the layer directory")
	}
	return rel, nil
}

func (e *extractor) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if base := path.Base(rel); strings.HasPrefix(base, whiteoutPrefix) {
		return e.whiteout(path.Dir(rel), base)
	}

	// Check the hardlink target before touching anything.
	var target string
	if hdr.Typeflag == tar.TypeLink {
		if target, err = e.linkTarget(hdr.Linkname, rel); err != nil {
			return err
		}
	}
	if err := e.root.parents(rel, true); err != nil {
		return err
	}
	p := e.root.path(rel)
	var st unix.Stat_t
	exists := true
	if err := lstat(p, &st); errors.Is(err, unix.ENOENT) {
		exists = false
	} else if err != nil {
		return err
	}
	m := &meta{
		mode:  uint32(hdr.Mode) & 0o7777,
		uid:   hdr.Uid,
		gid:   hdr.Gid,
		mtime: timespec(hdr.ModTime),
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && !isOverlayXattr(name) {
			if m.xattrs == nil {
				m.xattrs = make(map[string]string)
			}
			m.xattrs[name] = v
		}
	}

	if hdr.Typeflag == tar.TypeDir {
		merge := exists && isDir(&st)
		if exists && !merge {
			if err := e.root.remove(rel, &st); err != nil {
				return err
			}
		}
		if !merge {
			if err := unix.Mkdir(p, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: p, Err: err}
			}
		}
		e.root.times[rel] = m.mtime
		return applyMeta(p, unix.S_IFDIR, m, merge, false, &e.x)
	}

	if rel == "." {
		return errors.New("the layer root can only be a directory")
	}
	if exists {
		if err := e.root.remove(rel, &st); err != nil {
			return err
		}
	}
	var typ uint32
	switch hdr.Typeflag {
	case tar.TypeReg:
		typ = unix.S_IFREG
		if err := e.writeFile(p, r, hdr.Size); err != nil {
			return err
		}
	case tar.TypeLink:
		// The new name shares the target's inode and metadata.
		if err := unix.Linkat(unix.AT_FDCWD, e.root.path(target), unix.AT_FDCWD, p, 0); err != nil {
			return &os.LinkError{Op: "link", Old: e.root.path(target), New: p, Err: err}
		}
		return nil
	case tar.TypeSymlink:
		typ = unix.S_IFLNK
		if err := unix.Symlink(hdr.Linkname, p); err != nil {
			return &os.LinkError{Op: "symlink", Old: hdr.Linkname, New: p, Err: err}
		}
	case tar.TypeChar, tar.TypeBlock:
		typ = unix.S_IFCHR
		if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(p, typ|0o600, int(dev)); err != nil {
			if errors.Is(err, unix.EPERM) && rootless.Inside() {
				// Buildah skips such an entry without a word; kiln does
				// not make an image that silently lacks a file.
				return fmt.Errorf("%s: a device node (%d:%d) cannot be made by a rootless kiln (in a user namespace): build this image as root", hdr.Name, hdr.Devmajor, hdr.Devminor)
			}
			return &os.PathError{Op: "mknod", Path: p, Err: err}
		}
	case tar.TypeFifo:
		typ = unix.S_IFIFO
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return &os.PathError{Op: "mkfifo", Path: p, Err: err}
		}
	}
	return applyMeta(p, typ, m, false, true, &e.x)
}

// linkTarget checks the target of the hardlink rel and returns it as a clean
// relative path: it must be inside the root, reached without symlinks, exist
// and not be a directory.
func (e *extractor) linkTarget(linkname, rel string) (string, error) {
	target, err := cleanName(linkname)
	if err != nil {
		return "", fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	if target == rel || target == "." {
		return "", fmt.Errorf("invalid hardlink target %q", linkname)
	}
	if err := e.root.parents(target, false); err != nil {
		return "", fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	var st unix.Stat_t
	if err := lstat(e.root.path(target), &st); err != nil {
		return "", fmt.Errorf("hardlink target %q: %w", linkname, err)
	}
	if isDir(&st) {
		return "", fmt.Errorf("hardlink target %q is a directory", linkname)
	}
	return target, nil
}

// whiteout applies the whiteout entry base in the directory dir.
func (e *extractor) whiteout(dir, base string) error {
	if err := e.root.dirs(dir, true); err != nil {
		return err
	}
	if base == opaqueMarker {
		p := e.root.path(dir)
		if err := unix.Lsetxattr(p, overlayXattr("opaque"), []byte("y"), 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + overlayXattr("opaque"), Path: p, Err: err}
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // other AUFS metadata, meaningless here
	}
	name := base[len(whiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	rel := join(dir, name)
	p := e.root.path(rel)
	var st unix.Stat_t
	if err := lstat(p, &st); err == nil {
		if err := e.root.remove(rel, &st); err != nil {
			return err
		}
	} else if !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod", Path: p, Err: err}
	}
	return nil
}

// writeFile creates the regular file p with size bytes of r. A buffer's
// worth of zero bytes is skipped rather than written, leaving a hole: a
// sparse file in the tar (whose holes archive/tar reads as zeros) stays
// sparse on disk, so a small tar claiming a huge sparse file cannot fill
// the disk.
func (e *extractor) writeFile(p string, r io.Reader, size int64) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if size > 0 {
		if e.buf == nil {
			e.buf = make([]byte, bufferSize)
		}
		var off int64
		hole := false
		for {
			n, err := fill(r, e.buf)
			if chunk := e.buf[:n]; isZero(chunk) {
				hole = hole || n > 0
			} else if _, werr := f.WriteAt(chunk, off); werr != nil {
				return fmt.Errorf("write %s: %w", p, werr)
			}
			off += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
		if off != size {
			return fmt.Errorf("write %s: %w", p, io.ErrUnexpectedEOF)
		}
		if hole {
			if err := f.Truncate(off); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
		}
	}
	return f.Close()
}

// fill reads from r until buf is full or r fails, and returns how many
// bytes it read: len(buf) with a nil error, or fewer with r's error.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// isZero reports whether every byte of b is zero: the first is, and each
// equals the next (a memcmp of b with itself shifted by one).
func isZero(b []byte) bool {
	return len(b) == 0 || (b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1]))
}
