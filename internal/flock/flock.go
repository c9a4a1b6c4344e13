package flock

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Exclusive takes the exclusive flock of f, polling with waits that
// double from 1 ms up to most, until it is free or ctx is done. It
// returns ctx's error when ctx ends the wait, and an *os.PathError for
// any other failure of flock(2).
func Exclusive(ctx context.Context, f *os.File, most time.Duration) error {
	wait := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, most)
	}
}
