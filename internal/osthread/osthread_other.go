//go:build !linux

package osthread

import "runtime"

// Own runs fn on a new goroutine locked to an OS thread (kiln's
// namespaces exist only on Linux).
func Own(fn func()) {
	go func() {
		runtime.LockOSThread()
		fn()
	}()
}
