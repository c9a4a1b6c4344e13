package history

import (
	"sync"
	"time"

	"github.com/kiln-build/kiln/fsm"
)

// Timer is an fsm.Observer that times each node: from its first
// transition out of pending to its last into a final state. It is safe
// for concurrent use.
type Timer struct {
	mu         sync.Mutex
	start, end map[string]time.Time
}

// NewTimer returns a Timer that has seen nothing.
func NewTimer() *Timer { return &Timer{start: map[string]time.Time{}, end: map[string]time.Time{}} }

// Event notes when a node started or ended.
func (t *Timer) Event(e fsm.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.start[e.Node]; !ok && e.From == fsm.Pending {
		// Time spent pending, waiting for dependencies, does not count.
		t.start[e.Node] = e.Time
	}
	if e.State.Final() {
		t.end[e.Node] = e.Time
		if _, ok := t.start[e.Node]; !ok {
			t.start[e.Node] = e.Time
		}
	}
}

// Output ignores the nodes' output.
func (t *Timer) Output(string, []byte) {}

// Duration returns how long node took; 0 if it has not ended.
func (t *Timer) Duration(node string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok1 := t.start[node]
	e, ok2 := t.end[node]
	if !ok1 || !ok2 {
		return 0
	}
	return e.Sub(s)
}
