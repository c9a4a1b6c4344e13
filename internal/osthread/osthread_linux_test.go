package osthread_test

import (
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/osthread"
	"github.com/kiln-build/kiln/internal/osthread/osthreadtest"
)

// childEnv marks the child process TestOwnNotMainThread runs in.
const childEnv = "KILN_TEST_OSTHREAD_CHILD"

// TestOwnNotMainThread calls Own from a goroutine on the main thread, and
// from another: fn never runs on the main thread. It runs in a child
// process, whose main thread no other test has kept busy.
func TestOwnNotMainThread(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOwnNotMainThread$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	tid := func() int {
		c := make(chan int, 1)
		osthread.Own(func() { c <- unix.Gettid() })
		return <-c
	}
	for range 20 {
		var got int
		osthreadtest.OnMainThread(t, func() { got = tid() })
		if got == unix.Getpid() {
			t.Fatalf("Own, called on the main thread, ran fn there (tid %d)", got)
		}
		if got = tid(); got == unix.Getpid() {
			t.Fatalf("Own ran fn on the main thread (tid %d)", got)
		}
	}
}
