package layer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// TreeDigests are two digests of a layer directory, from [DigestTree].
type TreeDigests struct {
	// Tree covers what a container sees: every entry's relative name,
	// type and mode bits, owner, size, modification time, device number,
	// link target, extended attributes (trusted.overlay.* included) and,
	// for a regular file, the sha256 of its content.
	Tree v1.Hash `json:"tree"`
	// Meta covers the same entries by their inode metadata only: inode
	// number, mode, owner, size, link count, device number and the
	// modification and change times (the top directory's change time
	// left out: the store bumps it to mark a layer used; and a whiteout's
	// link count and change time, which overlayfs moves). Writing a file,
	// its attributes or the directory's entries changes a change time that
	// no one can set back, so a Meta that matches is a cheap proof that
	// the tree is as it was; a copy or restore of the directory changes it
	// without changing Tree.
	Meta v1.Hash `json:"meta"`
}

// DigestTree walks dir and returns its digests. With content false it
// only lstats (Meta); Tree is then the zero Hash. With content, the files'
// contents, link targets and attributes are read by a few goroutines
// while the walk goes on, and hashed in walk order once it is done.
func DigestTree(ctx context.Context, dir string, content bool) (TreeDigests, error) {
	if !content {
		return digestTree(ctx, dir, false, nil)
	}
	return DigestTreeWith(ctx, dir, TreeOptions{})
}

// TreeOptions are the options of DigestTreeWith.
type TreeOptions struct {
	// Known holds the sha256 of the contents of regular files known
	// without reading them, by inode number: files of dir with one of
	// these inodes are not read. Only for inodes whose contents do not
	// change (an unpacked layer's, hard-linked into dir).
	Known map[uint64][sha256.Size]byte
	// Sums, when not nil, is given the sha256 of the contents of every
	// regular file of dir, by relative path.
	Sums map[string][sha256.Size]byte
	// Files holds the content digests a tar writer took as it read the
	// files (see [WithFileSums]): a file whose inode number, size,
	// modification and change times are those it was read under is not
	// read again.
	Files *FileSums
}

// DigestTreeWith is DigestTree with content, and options; the digests are
// the same as DigestTree's.
func DigestTreeWith(ctx context.Context, dir string, o TreeOptions) (TreeDigests, error) {
	return digestTree(ctx, dir, true, &o)
}

func digestTree(ctx context.Context, dir string, content bool, o *TreeOptions) (TreeDigests, error) {
	meta := sha256.New()
	var ents []treeEntry
	var rd *treeReaders
	if content {
		rd = newTreeReaders(ctx, o.Known, o.Files)
	}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		ctime, nlink := st.Ctim.Nano(), uint64(st.Nlink)
		if rel == "." {
			ctime = 0
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			// An overlay whiteout: overlayfs makes them as links to one
			// inode of its workdir, whose link count and change time move
			// as snapshots come and go. It holds nothing else to change.
			ctime, nlink = 0, 0
		}
		field(meta, rel, st.Ino, st.Mode, st.Uid, st.Gid, st.Size, nlink, st.Rdev, st.Mtim.Nano(), ctime)
		if content {
			ents = append(ents, treeEntry{path: p, rel: rel, st: st})
		}
		return nil
	})
	if content && err == nil {
		err = rd.read(ents)
	}
	if err != nil {
		return TreeDigests{}, fmt.Errorf("digest tree %s: %w", dir, err)
	}
	d := TreeDigests{Meta: hashSum(meta)}
	if content {
		tree := sha256.New()
		for _, e := range ents {
			st := &e.st
			field(tree, e.rel, st.Mode, st.Uid, st.Gid, st.Size, st.Rdev, st.Mtim.Nano())
			tree.Write(e.tail)
		}
		d.Tree = hashSum(tree)
		if o.Sums != nil {
			for _, e := range ents {
				if e.st.Mode&unix.S_IFMT == unix.S_IFREG {
					o.Sums[e.rel] = e.sum
				}
			}
		}
	}
	return d, nil
}

// treeEntry is an entry of a tree digest's walk: its lstat, and what its
// tree digest covers besides (tail: the fields of its link target or
// content's sha256, and of its extended attributes).
type treeEntry struct {
	path, rel string
	st        unix.Stat_t
	tail      []byte
	sum       [sha256.Size]byte // a regular file's contents'
}

// treeReaders fill in the tails of a tree digest's entries on a few
// goroutines.
type treeReaders struct {
	ctx   context.Context
	known map[uint64][sha256.Size]byte // see TreeOptions.Known
	files *FileSums                    // see TreeOptions.Files
}

func newTreeReaders(ctx context.Context, known map[uint64][sha256.Size]byte, files *FileSums) *treeReaders {
	return &treeReaders{ctx: ctx, known: known, files: files}
}

// read fills in every entry's tail and returns the first error.
func (r *treeReaders) read(ents []treeEntry) error {
	n := min(max(2, runtime.GOMAXPROCS(0)), len(ents))
	// A buffer as big as the biggest file, up to 1 MiB: a step's layer
	// is often a few small files, and 1 MiB a reader, zeroed and
	// collected on every layer, cost more than reading them.
	size := int64(32 << 10)
	for i := range ents {
		if ents[i].st.Mode&unix.S_IFMT == unix.S_IFREG {
			size = max(size, min(ents[i].st.Size, 1<<20))
		}
	}
	var next atomic.Int64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			var x xattrReader
			buf := make([]byte, size)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ents) || r.ctx.Err() != nil {
					errs[w] = r.ctx.Err()
					return
				}
				if err := ents[i].readTail(&x, buf, r); err != nil {
					errs[w] = err
					next.Store(int64(len(ents))) // stop the others
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readTail reads what e's tree digest covers besides its lstat: for a
// regular file whose digest r knows (TreeOptions), not its contents.
func (e *treeEntry) readTail(x *xattrReader, buf []byte, r *treeReaders) error {
	var h byteHash
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		target, err := os.Readlink(e.path)
		if err != nil {
			return err
		}
		field(&h, "link", target)
	case unix.S_IFREG:
		sum, ok := r.known[e.st.Ino]
		if !ok {
			sum, ok = r.files.lookup(&e.st)
		}
		if !ok {
			var err error
			if sum, err = fileDigest(e.path, buf); err != nil {
				return err
			}
		}
		e.sum = sum
		field(&h, "content", hex.EncodeToString(sum[:]))
	}
	names, err := x.names(e.path)
	if err != nil {
		return err
	}
	for name := range strings.SplitSeq(names, "\x00") {
		if name == "" {
			continue
		}
		v, err := x.get(e.path, name)
		if err != nil {
			return err
		}
		field(&h, "xattr", name, v)
	}
	e.tail = h.b
	return nil
}

// byteHash collects what field writes, to be hashed later.
type byteHash struct{ b []byte }

func (h *byteHash) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

// fileDigest returns the sha256 of the regular file p, opened without
// following links and without blocking.
func fileDigest(p string, buf []byte) (sum [sha256.Size]byte, err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// field writes the values, each length-prefixed, to h.
func field(h io.Writer, vals ...any) {
	var n [8]byte
	for _, v := range vals {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case uint32:
			s = strconv.FormatUint(uint64(v), 10)
		case uint64:
			s = strconv.FormatUint(v, 10)
		case int64:
			s = strconv.FormatInt(v, 10)
		default:
			panic(fmt.Sprintf("field: %T", v))
		}
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
}

func hashSum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}
