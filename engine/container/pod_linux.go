package container

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/osthread"
)

// pod is a network namespace held by an open file of kiln's alone: no
// process, mount or file on disk keeps it, so it goes away when the last
// of its containers ends and the pod is closed, or kiln dies.
type pod struct {
	f *os.File
}

// NewPod makes a network namespace with lo up; see engine.Pod.
func (r *Runtime) NewPod(ctx context.Context) (engine.Pod, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	osthread.Own(func() {
		// The thread enters the new namespace and is never unlocked: it
		// ends with this goroutine, and serves no other.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("making a pod's network namespace: %w", err)}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			ch <- result{err: fmt.Errorf("making a pod's network namespace: %w", err)}
			return
		}
		if err := loopbackUp(); err != nil {
			f.Close()
			ch <- result{err: fmt.Errorf("making a pod's network namespace: %w", err)}
			return
		}
		ch <- result{f: f}
	})
	res := <-ch
	if res.err != nil {
		return nil, res.err
	}
	return &pod{f: res.f}, nil
}

// NetNS returns a path to the namespace, valid in kiln's process while
// the pod is open.
func (p *pod) NetNS() string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), p.f.Fd())
}

func (p *pod) Close() error { return p.f.Close() }

var _ engine.PodRuntime = (*Runtime)(nil)
