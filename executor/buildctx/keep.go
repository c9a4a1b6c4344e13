package buildctx

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// Keep is what an incremental copy keeps and learns (CopyOptions.Keep).
// Before the copy, regular files may be put at their targets (hard links
// of an earlier copy's files, see package prior): the copy leaves such a
// file as it is when it is already what it would write there (see keep),
// and replaces it otherwise, as it replaces anything in its way (it
// unlinks it first: a kept file shares its inode with the earlier copy's,
// which must never change). Meanwhile Keep notes where each regular file of
// the source went, which the next copy's Keep is made from. Its methods may
// be called from several goroutines.
type Keep struct {
	pre map[string]uint64 // target → inode of the file put there before the copy

	mu     sync.Mutex
	kept   map[string]bool
	placed []Placed
}

// Placed says that the copy put the source file Source (relative to the
// build context: the source's match joined with the file's path under it,
// as DigestFiles names it) at Target (relative to the root,
// slash-separated, without a leading slash).
type Placed struct {
	Target string `json:"t"`
	Source string `json:"s"`
}

// NewKeep returns a Keep for a copy before which the regular files pre
// (target → inode number) were put at their targets; pre may be nil.
func NewKeep(pre map[string]uint64) *Keep {
	return &Keep{pre: pre, kept: map[string]bool{}}
}

// Placed returns where the copy put each regular file of its source that
// has no other hard link there, in the order it did (the last of several
// placements at one target is what the target holds).
func (k *Keep) Placed() []Placed {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Placed(nil), k.placed...)
}

// Kept reports whether the copy kept the file put at target before it.
func (k *Keep) Kept(target string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kept[target]
}

// cleanTarget is target (real, relative to the root) as Keep names it.
func cleanTarget(target string) string {
	t := path.Clean("/" + target)
	return t[1:]
}

// note records that the source file src went to target.
func (k *Keep) note(src, target string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.placed = append(k.placed, Placed{Target: cleanTarget(target), Source: src})
}

// keepBuf is a pair of buffers for comparing a kept file with its source.
type keepBuf struct{ a, b []byte }

var keepBufs = sync.Pool{New: func() any { return &keepBuf{a: make([]byte, 64<<10), b: make([]byte, 64<<10)} }}

// keep reports whether the file at abs (target, relative to the root) is
// the one put there before the copy and already what the copy would write:
// a regular file of the source's size and contents (read from in, at its
// start), with mode, owner uid:gid and modification time mtime (in
// nanoseconds). Such a file is noted as kept.
func (k *Keep) keep(abs, target string, in int, size int64, mode uint32, uid, gid int, mtime int64) (bool, error) {
	target = cleanTarget(target)
	ino, ok := k.pre[target]
	if !ok {
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return false, nil // gone or never there: written as usual
	}
	if st.Ino != ino || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != size || st.Mode&0o7777 != mode ||
		int(st.Uid) != uid || int(st.Gid) != gid || st.Mtim.Nano() != mtime {
		return false, nil
	}
	same, err := sameContent(abs, in, size)
	if err != nil || !same {
		return false, err
	}
	k.mu.Lock()
	k.kept[target] = true
	k.mu.Unlock()
	return true, nil
}

// sameContent reports whether the regular file at abs holds the size bytes
// that the file in holds from its start.
func sameContent(abs string, in int, size int64) (bool, error) {
	fd, err := openRetry(abs, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	defer unix.Close(fd)
	buf := keepBufs.Get().(*keepBuf)
	defer keepBufs.Put(buf)
	for off := int64(0); off < size; {
		n := int(min(int64(len(buf.a)), size-off))
		if err := preadFull(in, buf.a[:n], off); err != nil {
			return false, err
		}
		if err := preadFull(fd, buf.b[:n], off); err != nil {
			return false, fmt.Errorf("read %s: %w", abs, err)
		}
		if !bytes.Equal(buf.a[:n], buf.b[:n]) {
			return false, nil
		}
		off += int64(n)
	}
	return true, nil
}

// preadFull reads len(p) bytes of fd at off; a file that ends before is
// an error (it shrank since it was stat'ed).
func preadFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pread(fd, p, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return fmt.Errorf("file shrank while being read")
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
