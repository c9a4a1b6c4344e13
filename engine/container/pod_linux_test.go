package container

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/engine"
)

// TestPod: containers that join one pod reach each other on 127.0.0.1,
// see only lo, and not the host's loopback; two pods listen on the same
// port at once without colliding; once closed and its containers gone,
// the namespace is gone too (no path of it is left to open).
func TestPod(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]string, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.podRound(ctx, fmt.Sprintf("pod %d", i))
		}()
	}
	wg.Wait()
	for i, got := range results {
		if got != fmt.Sprintf("pod %d\n", i) {
			t.Errorf("pod %d: the client got %q, want its own server's answer", i, got)
		}
	}
}

// podRound starts a server on port 7000 in a new pod, then a client in
// the same pod, and returns what the client read.
func (e *env) podRound(ctx context.Context, answer string) string {
	t := e.t
	p, err := e.rt.NewPod(ctx)
	if err != nil {
		t.Error(err)
		return ""
	}
	path := p.NetNS()
	key := fmt.Sprintf("c%d", e.n.Add(1))
	mounts, err := e.sn.Prepare(ctx, key, []string{e.lower})
	if err != nil {
		t.Error(err)
		return ""
	}
	srv, err := e.rt.Create(ctx, engine.Spec{ID: key, Rootfs: mounts, NetNS: path,
		Process: sh(fmt.Sprintf("while true; do echo '%s' | nc -l -p 7000; done", answer))})
	if err != nil {
		t.Error(err)
		return ""
	}
	r := e.run(ctx, engine.Spec{NetNS: path, Process: sh(`ls /sys/class/net >&2
for i in $(seq 100); do nc 127.0.0.1 7000 </dev/null 2>/dev/null && exit 0; sleep 0.05; done; exit 1`)})
	if r.stderr != "lo\n" {
		t.Errorf("%s: interfaces %q, want lo alone", answer, r.stderr)
	}
	if err := srv.Delete(ctx); err != nil {
		t.Error(err)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("%s: %s still opens after Close", answer, path)
	}
	return strings.ReplaceAll(r.stdout, "\r", "")
}
