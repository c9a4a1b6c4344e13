package container

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
)

// Mounted mounts each set of root filesystem mounts (from a snapshotter)
// on a directory of its own, in a private mount namespace of a dedicated
// OS thread, and calls fn with those directories: this is how kiln writes
// into a snapshot (a copy step) without a container. The namespace, and
// every mount in it, goes away with the thread when fn returns, whatever
// fn does. fn must do its file system work on the calling goroutine, or
// on goroutines it starts with Go.
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
	go func() {
		// Never unlocked: the thread exits with this goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
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
	}()
	return <-errc
}

// Go runs fn on a new goroutine whose OS thread is in the mount namespace
// of the calling thread, so that it sees the mounts of a Mounted fn that
// calls Go (a copy's writers). The thread exits with fn. It always joins
// the namespace: comparing it with the process's (/proc/self/ns/mnt, the
// main thread's) would take a Mounted fn that runs on the main thread for
// one in the process's namespace, and start fn where its mounts are not.
func Go(fn func()) error {
	here, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the thread's mount namespace: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread leaves the process's namespace for
		// good, and exits with this goroutine.
		runtime.LockOSThread()
		err := unix.Unshare(unix.CLONE_FS) // setns refuses a thread sharing its root and working directory
		if err == nil {
			err = unix.Setns(int(here.Fd()), unix.CLONE_NEWNS)
		}
		here.Close()
		if err != nil {
			errc <- fmt.Errorf("joining a mount namespace: %w", err)
			return
		}
		errc <- nil
		fn()
	}()
	return <-errc
}
