package osthread

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Own runs fn on a new goroutine locked to an OS thread that is not the
// process's main thread. The thread stays locked unless fn unlocks it
// (when it left the thread as it found it): when fn returns, the
// goroutine ends, and the thread with it, in whatever state fn left it.
// Own returns at once; fn reports through its own channels.
func Own(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			fn()
			return
		}
		// The main thread: hold it while fn starts on another thread,
		// then give it back as it was.
		started := make(chan struct{})
		Own(func() {
			close(started)
			fn()
		})
		<-started
		runtime.UnlockOSThread()
	}()
}
