package buildctx

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// digestVersion starts every digest's encoding; change it whenever the
// encoding changes.
const digestVersion = "kiln buildctx digest v2"

// Digest returns a digest of what copying src would copy: for each match
// of src (by its matched name) and each file, directory and link under it
// (ignore rules applied), its relative path, type, mode bits (permissions,
// setuid, setgid, sticky), link target and the sha256 of its contents, and
// for a file hard-linked to files before it in the match, the first. It
// never covers modification or access times, owners, or the mode of a
// directory whose contents are what is copied. The same files anywhere give
// the same digest.
func (c *Context) Digest(ctx context.Context, src string) (v1.Hash, error) {
	d, _, _, err := c.digest(ctx, src)
	return d, err
}

// digest is Digest, also returning the matches and their walks (with each
// regular file's sum), for DigestFiles.
func (c *Context) digest(ctx context.Context, src string) (v1.Hash, []match, [][]entry, error) {
	ms, err := c.src.matches(src)
	if err != nil {
		return v1.Hash{}, nil, nil, err
	}
	// Files are hashed by a few goroutines while the walk goes on, given
	// to them in batches: one channel send (and goroutine wake-up) per
	// file cost as much as a small file's hashing.
	jobs := make(chan []hashJob, 64)
	hashed := make(chan error, 1)
	go func() { hashed <- hashFiles(ctx, jobs) }()
	walks := make([][]entry, len(ms))
	var batch []hashJob
	for i, m := range ms {
		if walks[i], err = c.src.walk(ctx, m, func(d *dirRef, name string, e *entry, lazy bool) {
			j := hashJob{dir: d, name: name, sum: e.sum}
			if lazy {
				j.fill = e.fi.(*statInfo)
			} else {
				j.size = e.fi.Size()
			}
			if d != nil {
				d.hold()
			}
			if batch = append(batch, j); len(batch) == hashBatch {
				jobs <- batch
				batch = nil
			}
		}); err != nil {
			break
		}
	}
	if len(batch) > 0 {
		jobs <- batch
	}
	close(jobs)
	if herr := <-hashed; err == nil {
		err = herr
	}
	if err != nil {
		return v1.Hash{}, nil, nil, fmt.Errorf("digest copy source %q: %w", src, err)
	}

	e := encoder{h: sha256.New()}
	e.str(digestVersion)
	e.uint(uint64(len(ms)))
	for i, m := range ms {
		e.str(m.name)
		e.uint(uint64(len(walks[i])))
		links := map[devIno]string{} // a copy keeps hard links within a match
		for _, en := range walks[i] {
			e.str(en.rel)
			mode := en.fi.Mode()
			switch {
			case mode.IsRegular():
				e.str("f")
				e.uint(uint64(modeBits(mode)))
				e.bytes(en.sum[:])
				first := ""
				if id, ok := linkID(en.fi); ok {
					if first, ok = links[id]; !ok {
						links[id], first = en.rel, ""
					}
				}
				e.str(first)
			case mode.IsDir():
				e.str("d")
				if en.rel == "." {
					e.uint(0) // its contents are copied, not it
				} else {
					e.uint(uint64(modeBits(mode)))
				}
			case mode&fs.ModeSymlink != 0:
				e.str("l")
				e.str(en.link)
			}
		}
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(e.h.Sum(nil))}, ms, walks, nil
}

// hashJob is a regular file to hash into sum: the entry name of the
// directory dir, or with no dir the absolute path name. Its size is size,
// or if fill is set, what stat'ing the open file (into fill) says.
type hashJob struct {
	dir  *dirRef
	name string
	size int64
	fill *statInfo
	sum  *[sha256.Size]byte
}

// path returns j's file's absolute path, for messages.
func (j *hashJob) path() string {
	if j.dir == nil {
		return j.name
	}
	return filepath.Join(j.dir.path, j.name)
}

// hashBatch is how many files a hashing goroutine is given at once.
const hashBatch = 32

// hashFiles hashes the files that jobs sends, on a few goroutines, until
// it is closed, and releases their directories. After a failure it
// drains jobs without hashing them.
func hashFiles(ctx context.Context, jobs <-chan []hashJob) error {
	workers := runtime.GOMAXPROCS(0) + 1
	var failed atomic.Bool
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			h := sha256.New()
			buf := make([]byte, 256<<10)
			for batch := range jobs {
				for _, j := range batch {
					err := ctx.Err()
					if err == nil && !failed.Load() {
						err = hashFile(h, buf, &j)
					}
					if j.dir != nil {
						j.dir.release()
					}
					if failed.Load() {
						continue
					}
					if err != nil {
						errs[w] = err
						failed.Store(true)
						continue
					}
					h.Sum(j.sum[:0])
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// hashFile resets h and writes j's file to it, failing if it is not a
// regular file of the size the walk saw (it changed meanwhile). It uses
// raw system calls relative to the walk's open directory: an os.File
// costs a poller registration and a finalizer, and a path a lookup of
// each of its components, which on thousands of small files is most of
// the time. O_NONBLOCK keeps a file swapped for a FIFO from blocking.
func hashFile(h hash.Hash, buf []byte, j *hashJob) error {
	h.Reset()
	dirfd := unix.AT_FDCWD
	if j.dir != nil {
		dirfd = j.dir.fd
	}
	fd, err := unix.Openat(dirfd, j.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: j.path(), Err: err}
	}
	defer unix.Close(fd)
	size := j.size
	if j.fill != nil {
		if err := unix.Fstat(fd, &j.fill.st); err != nil {
			return &fs.PathError{Op: "stat", Path: j.path(), Err: err}
		}
		if !j.fill.Mode().IsRegular() {
			return fmt.Errorf("read %s: it changed while being read (no longer a regular file)", j.path())
		}
		size = j.fill.st.Size
	}
	var n int64
	for {
		m, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: j.path(), Err: err}
		}
		if m == 0 {
			break
		}
		h.Write(buf[:m])
		n += int64(m)
		if n == size && m < len(buf) {
			// A short read of a regular file ends at its end: the read
			// that would return 0 is not needed.
			break
		}
	}
	if n != size {
		return fmt.Errorf("read %s: it changed while being read (%d bytes, then %d)", j.path(), size, n)
	}
	return nil
}

// modeBits returns the permission, setuid, setgid and sticky bits of mode,
// in their Unix places.
func modeBits(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// encoder writes length-prefixed fields to a hash.
type encoder struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) uint(n uint64) { e.h.Write(binary.AppendUvarint(e.buf[:0], n)) }

func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.h.Write(b)
}

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.h.Write([]byte(s))
}
