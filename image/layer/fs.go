package layer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/rootless"
)

const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	opaqueMarker       = ".wh..wh..opq"
	paxXattrPrefix     = "SCHILY.xattr."
)

// isOverlayXattr reports whether name is one of overlayfs's own
// attributes, which never enter a layer tar nor come from one:
// trusted.overlay.* (root) or user.overlay.* (in a user namespace, where
// overlayfs is mounted with userxattr).
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// overlayXattr is the name of overlayfs's attribute n ("opaque") on the
// layer directories of this process: under trusted.overlay. as root,
// user.overlay. in a user namespace.
func overlayXattr(n string) string { return rootless.OverlayXattrPrefix() + n }

// dirent is one directory entry with its lstat result.
type dirent struct {
	name string
	key  string // sort key: the name the entry gets in the tar
	st   unix.Stat_t
}

// readDir lstats every entry of dir and returns them sorted by name.
func readDir(dir string) ([]dirent, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	ents := make([]dirent, len(names))
	for i, name := range names {
		ents[i].name = name
		ents[i].key = name
		p := dir + "/" + name
		if err := lstat(p, &ents[i].st); err != nil {
			return nil, err
		}
	}
	return ents, nil
}

func lstat(p string, st *unix.Stat_t) error {
	for {
		err := unix.Lstat(p, st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		return nil
	}
}

func fileType(st *unix.Stat_t) uint32 { return uint32(st.Mode) & unix.S_IFMT }

func isDir(st *unix.Stat_t) bool { return fileType(st) == unix.S_IFDIR }

// isWhiteout reports whether st is an overlay-form whiteout: a character
// device with device number 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return fileType(st) == unix.S_IFCHR && st.Rdev == 0
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Sec, st.Mtim.Nsec) }

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// join returns the relative path of name inside the relative directory dir.
func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// xattrReader reads extended attributes with reusable buffers.
type xattrReader struct {
	list []byte
	val  []byte
}

// read returns the extended attributes of p (not following a final symlink),
// leaving trusted.overlay.* attributes out of the map and returning their
// names in overlay. attrs is nil when p has none.
func (x *xattrReader) read(p string) (attrs map[string]string, overlay []string, err error) {
	names, err := x.names(p)
	if err != nil || len(names) == 0 {
		return nil, nil, err
	}
	for len(names) > 0 {
		i := strings.IndexByte(names, 0)
		if i < 0 {
			i = len(names)
		}
		name := names[:i]
		names = names[min(i+1, len(names)):]
		if name == "" {
			continue
		}
		if isOverlayXattr(name) {
			overlay = append(overlay, name)
			continue
		}
		v, err := x.get(p, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		if attrs == nil {
			attrs = make(map[string]string)
		}
		attrs[name] = v
	}
	return attrs, overlay, nil
}

// names returns the NUL-separated attribute names of p.
func (x *xattrReader) names(p string) (string, error) {
	if x.list == nil {
		x.list = make([]byte, 1024)
	}
	for {
		n, err := unix.Llistxattr(p, x.list)
		switch {
		case err == nil:
			return string(x.list[:n]), nil
		case err == unix.ERANGE:
			n, err = unix.Llistxattr(p, nil)
			if err != nil {
				return "", &os.PathError{Op: "llistxattr", Path: p, Err: err}
			}
			x.list = make([]byte, n+1024)
		case err == unix.ENOTSUP, err == unix.EOPNOTSUPP:
			return "", nil
		case err == unix.EINTR:
		default:
			return "", &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
	}
}

// get returns the value of the attribute name of p.
func (x *xattrReader) get(p, name string) (string, error) {
	if x.val == nil {
		x.val = make([]byte, 1024)
	}
	for {
		n, err := unix.Lgetxattr(p, name, x.val)
		switch {
		case err == nil:
			return string(x.val[:n]), nil
		case err == unix.ERANGE:
			n, err = unix.Lgetxattr(p, name, nil)
			if err != nil {
				return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
			}
			x.val = make([]byte, n+1024)
		case err == unix.EINTR:
		default:
			return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
	}
}

// isOpaque reports whether the directory p carries trusted.overlay.opaque=y.
func (x *xattrReader) isOpaque(p string) (bool, error) {
	v, err := x.get(p, overlayXattr("opaque"))
	if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	return v == "y", err
}

// meta is the metadata written to a created file system object.
type meta struct {
	mode   uint32 // permission bits with setuid, setgid and sticky
	uid    int
	gid    int
	xattrs map[string]string // without trusted.overlay.*
	mtime  unix.Timespec
}

// applyMeta sets owner, mode and extended attributes of p, in that order so
// that chown does not clear setuid bits or file capabilities. When replace is
// set, attributes of p missing from m.xattrs are removed (other than
// trusted.overlay.*), for a directory that takes the metadata of a newer
// entry. When setTime is set, the mtime (and atime) is set too.
func applyMeta(p string, typ uint32, m *meta, replace, setTime bool, x *xattrReader) error {
	if err := unix.Lchown(p, m.uid, m.gid); err != nil {
		if errors.Is(err, unix.EINVAL) && rootless.Inside() {
			return fmt.Errorf("%s belongs to %d:%d, which this rootless kiln's user namespace does not map: give the user a range in /etc/subuid and /etc/subgid: %w", p, m.uid, m.gid, err)
		}
		return &os.PathError{Op: "lchown", Path: p, Err: err}
	}
	if typ != unix.S_IFLNK {
		if err := unix.Fchmodat(unix.AT_FDCWD, p, m.mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	if replace {
		old, _, err := x.read(p)
		if err != nil {
			return err
		}
		for name := range old {
			if _, ok := m.xattrs[name]; ok {
				continue
			}
			if err := unix.Lremovexattr(p, name); err != nil && err != unix.ENODATA {
				return &os.PathError{Op: "lremovexattr " + name, Path: p, Err: err}
			}
		}
	}
	for _, name := range sortedKeys(m.xattrs) {
		err := unix.Lsetxattr(p, name, []byte(m.xattrs[name]), 0)
		if err == unix.ENOTSUP {
			continue // the file system has no extended attributes
		}
		if err != nil {
			return &os.PathError{Op: "lsetxattr " + name, Path: p, Err: err}
		}
	}
	if setTime {
		return setMtime(p, m.mtime)
	}
	return nil
}

func setMtime(p string, ts unix.Timespec) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// root is a directory that entries are created in. It checks that the
// parents of each path are real directories (never symlinks), remembering
// the chain of directories it checked last so that consecutive entries in
// one directory cost no extra lstat.
type root struct {
	dir   string
	chain []string // relative paths, each one the parent of the next
	times map[string]unix.Timespec
}

func newRoot(dir string) *root {
	return &root{dir: dir, times: make(map[string]unix.Timespec)}
}

func (r *root) path(rel string) string {
	if rel == "." {
		return r.dir
	}
	return r.dir + "/" + rel
}

// forget drops the checked chain; call it whenever a directory is removed.
func (r *root) forget() { r.chain = r.chain[:0] }

// parents makes sure every component of rel's parent is a directory that is
// not a symlink, creating missing ones (mode 0755) when create is set.
func (r *root) parents(rel string, create bool) error {
	return r.dirs(path.Dir(rel), create)
}

// dirs makes sure every component of the relative path dir is a directory
// that is not a symlink.
func (r *root) dirs(dir string, create bool) error {
	if dir == "." {
		return nil
	}
	n := 0
	for n < len(r.chain) && (dir == r.chain[n] || strings.HasPrefix(dir, r.chain[n]+"/")) {
		n++
	}
	r.chain = r.chain[:n]
	start := 0
	if n > 0 {
		start = len(r.chain[n-1]) + 1
	}
	for start <= len(dir) {
		end := len(dir)
		if i := strings.IndexByte(dir[start:], '/'); i >= 0 {
			end = start + i
		}
		rel := dir[:end]
		p := r.path(rel)
		var st unix.Stat_t
		err := lstat(p, &st)
		switch {
		case err == nil && isDir(&st):
		case err == nil:
			return fmt.Errorf("parent %q is not a directory", rel)
		case create && errors.Is(err, unix.ENOENT):
			if err := unix.Mkdir(p, 0o755); err != nil {
				return &os.PathError{Op: "mkdir", Path: p, Err: err}
			}
		default:
			return err
		}
		r.chain = append(r.chain, rel)
		start = end + 1
	}
	return nil
}

// remove removes whatever is at rel, if anything. st is its lstat result.
func (r *root) remove(rel string, st *unix.Stat_t) error {
	p := r.path(rel)
	if isDir(st) {
		r.forget()
		delete(r.times, rel)
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
		return nil
	}
	if err := unix.Unlink(p); err != nil {
		return &os.PathError{Op: "unlink", Path: p, Err: err}
	}
	return nil
}

// setDirTimes sets the mtimes recorded in r.times, after all entries are
// written, so that creating children does not change them. A directory that
// was replaced or is now reached through a symlink is skipped.
func (r *root) setDirTimes() error {
	rels := make([]string, 0, len(r.times))
	for rel := range r.times {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if rel != "." {
			if err := r.parents(rel, false); err != nil {
				continue
			}
			var st unix.Stat_t
			if err := lstat(r.path(rel), &st); err != nil || !isDir(&st) {
				continue
			}
		}
		if err := setMtime(r.path(rel), r.times[rel]); err != nil {
			return err
		}
	}
	return nil
}
