package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/flock"
)

// Lock takes the lock of key k, waiting until it is free or ctx is done. A
// build holds it from looking k up until it has put k's record, so that two
// builds (goroutines or processes) needing the same step run it once: the
// second waits, then finds the record. Call unlock to release it; the lock
// is released too if the process dies.
//
// The lock is an flock(2) on cache/locks/<key>.lock, opened anew by each
// call (flock locks belong to an open file description, so goroutines of one
// process exclude each other too). unlock removes the file before releasing
// it, and a waiter that then gets the lock of a removed file tries again, so
// lock files do not pile up.
func (c *Cache) Lock(ctx context.Context, k Key) (unlock func(), err error) {
	p := filepath.Join(c.locksDir(), k.String()+".lock")
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock cache key %s: %w", k, err)
		}
		if err := flock.Exclusive(ctx, f, 20*time.Millisecond); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock cache key %s: %w", k, err)
		}
		same, err := isFile(f, p)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock cache key %s: %w", k, err)
		}
		if same {
			return func() {
				os.Remove(p) // while still locked: a waiter then finds it gone and retries
				f.Close()
			}, nil
		}
		f.Close() // the holder removed it as we waited: lock the new file
	}
}

// isFile reports whether the open file f is still the file at p.
func isFile(f *os.File, p string) (bool, error) {
	var open, named unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &open); err != nil {
		return false, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if err := unix.Stat(p, &named); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return open.Dev == named.Dev && open.Ino == named.Ino, nil
}
