package buildctx

import (
	"crypto/sha256"
	"path"
	"path/filepath"
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
	upper   string                       // where pre were put
	pre     map[string]Prior             // by target
	sources map[string][sha256.Size]byte // the sources' contents, by name

	mu     sync.Mutex
	kept   map[string]bool
	placed []Placed
}

// Prior is a regular file put at its target before the copy: its device
// and inode numbers, and the sha256 of its contents.
type Prior struct {
	Dev, Ino uint64
	Sum      [sha256.Size]byte
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
// were put at their targets (by target; nil for none) in the directory
// upper, the writable layer of the overlay the copy writes to, and whose
// source files have the contents sources says (the sha256 of each regular
// file, by name, as DigestFiles gives them).
func NewKeep(upper string, pre map[string]Prior, sources map[string][sha256.Size]byte) *Keep {
	return &Keep{upper: upper, pre: pre, sources: sources, kept: map[string]bool{}}
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

// keep reports whether the file at target (relative to the root) is the
// one put there before the copy and already what the copy would write
// there from the source file src: a regular file with the source's
// contents (by their sha256s) and size, and with mode, owner uid:gid and
// modification time mtime (in nanoseconds). Such a file is noted as kept.
// It is looked at in the upper directory, where the overlay keeps it and
// every change the copy made, without the overlay's lookups.
func (k *Keep) keep(target, src string, size int64, mode uint32, uid, gid int, mtime int64) bool {
	target = cleanTarget(target)
	p, ok := k.pre[target]
	if !ok {
		return false
	}
	if sum, ok := k.sources[src]; !ok || sum != p.Sum {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(k.upper, target), &st); err != nil {
		return false // gone or never there: written as usual
	}
	if st.Dev != p.Dev || st.Ino != p.Ino || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != size || st.Mode&0o7777 != mode ||
		int(st.Uid) != uid || int(st.Gid) != gid || st.Mtim.Nano() != mtime {
		return false
	}
	k.mu.Lock()
	k.kept[target] = true
	k.mu.Unlock()
	return true
}
