package container

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/osthread"
)

// Mounted mounts each set of root filesystem mounts (from a snapshotter)
// on a directory of its own, in a private mount namespace of a dedicated
// OS thread (never the main thread: see package osthread), and calls fn
// with those directories: this is how kiln writes into a snapshot (a copy
// step) without a container. The namespace, and every mount in it, goes
// away with the thread when fn returns, whatever fn does. fn must do its
// file system work on the calling goroutine, or on goroutines it starts
// with Go.
// Directories for the mountpoints are made under tmp, named
// <pid>-mnt-<random>, and removed.
func Mounted(tmp string, sets [][]engine.Mount, fn func(roots []string) error) error {
	roots := make([]string, len(sets))
	for i := range sets {
		// Named <pid>-mnt-<random>, as the store names its temp files,
		// so that the store's sweep removes it if this process dies.
		d, err := os.MkdirTemp(tmp, strconv.Itoa(os.Getpid())+"-mnt-")
		if err != nil {
			return fmt.Errorf("making a mountpoint: %w", err)
		}
		defer os.Remove(d)
		roots[i] = d
	}
	errc := make(chan error, 1)
	osthread.Own(func() {
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("making a mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making mounts private: %w", err)
			return
		}
		for i, set := range sets {
			r := &rootfs{dir: roots[i]}
			if err := r.mountRoot(set); err != nil {
				errc <- err
				return
			}
		}
		errc <- fn(roots)
	})
	return <-errc
}

// Go runs fn on a new goroutine whose OS thread is in the mount namespace
// of the calling thread, so that it sees the mounts of a Mounted fn that
// calls Go (a copy's writers). When the new goroutine's thread is in that
// namespace already (Go called outside Mounted), it is a plain go
// statement; else the thread joins it, and exits with fn.
func Go(fn func()) error {
	here, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the thread's mount namespace: %w", err)
	}
	errc := make(chan error, 1)
	osthread.Own(func() {
		err := joinMountNS(here)
		here.Close()
		errc <- err
		if err == nil {
			fn()
		}
	})
	return <-errc
}

// joinMountNS moves the calling thread (locked, not the main thread) into
// the mount namespace ns. If the thread is there already, it unlocks it
// instead: the thread is as it was and may serve other goroutines. (The
// thread is compared with Go's caller, not with /proc/self: that is the
// main thread, which code that leaves a locked thread in a namespace of
// its own, as engine/snapshot's overlay probe, may have been given.)
func joinMountNS(ns *os.File) error {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &a); err != nil {
		return fmt.Errorf("joining a mount namespace: %w", err)
	}
	if err := unix.Stat("/proc/thread-self/ns/mnt", &b); err != nil {
		return fmt.Errorf("joining a mount namespace: %w", err)
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		runtime.UnlockOSThread()
		return nil
	}
	// setns refuses a thread sharing its root and working directory.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("joining a mount namespace: %w", err)
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("joining a mount namespace: %w", err)
	}
	return nil
}
