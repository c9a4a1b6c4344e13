package osthread_test

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/internal/osthread"
)

// TestOwnNotMainThread calls Own from a goroutine on the main thread, and
// from another: fn never runs on the main thread.
func TestOwnNotMainThread(t *testing.T) {
	tid := func() int {
		c := make(chan int, 1)
		osthread.Own(func() { c <- unix.Gettid() })
		return <-c
	}
	for range 20 {
		var got int
		enginetest.OnMainThread(t, func() { got = tid() })
		if got == unix.Getpid() {
			t.Fatalf("Own, called on the main thread, ran fn there (tid %d)", got)
		}
		if got = tid(); got == unix.Getpid() {
			t.Fatalf("Own ran fn on the main thread (tid %d)", got)
		}
	}
}
