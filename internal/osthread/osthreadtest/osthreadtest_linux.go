package osthreadtest

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// OnMainThread runs fn on a goroutine that starts on the process's main
// thread, not locked to it: a goroutine fn starts and waits for is then
// the next to run there. Each goroutine that starts elsewhere holds its
// thread until fn returns, so that the next one starts on another thread
// (an idle one, such as the main thread, before a new one).
func OnMainThread(t testing.TB, fn func()) {
	release := make(chan struct{})
	defer close(release)
	for range 100 {
		ran := make(chan bool)
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() != unix.Getpid() {
				ran <- false
				<-release
				runtime.UnlockOSThread()
				return
			}
			runtime.UnlockOSThread()
			fn()
			ran <- true
		}()
		if <-ran {
			return
		}
	}
	t.Fatal("no goroutine ran on the main thread in 100 tries")
}
