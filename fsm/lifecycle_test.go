package fsm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Output(string, []byte) {}

func (r *recorder) path() []State {
	var out []State
	for _, e := range r.events {
		out = append(out, e.State)
	}
	return out
}

func TestLives(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		kind  Kind
		steps []State
		bad   State // a transition that must be refused at the end
	}{
		{"miss", Step, []State{CheckingCache, Creating, Running, Committing, Done}, Running},
		{"hit", Step, []State{CheckingCache, Cached}, Creating},
		{"test passes", Test, []State{CheckingCache, Creating, Running, Passed}, Failed},
		{"test fails", Test, []State{CheckingCache, Creating, Running, Failed}, Passed},
		{"cancelled while running", Step, []State{CheckingCache, Creating, Running, Cancelled}, Done},
		{"failed while committing", Step, []State{CheckingCache, Creating, Running, Committing, Failed}, Cancelled},
		{"service stops", Service, []State{Starting, Ready, Stopped}, Ready},
		{"service never ready", Service, []State{Starting, Failed}, Ready},
		{"service cancelled when ready", Service, []State{Starting, Ready, Cancelled}, Stopped},
		{"a service does not run", Service, []State{Starting, Ready}, Running},
		{"a step does not get ready", Step, []State{CheckingCache, Creating}, Ready},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			m := New("main/1", "run: echo hi", tc.kind, r)
			m.SetCacheKey("abc")
			for _, s := range tc.steps {
				if err := m.To(ctx, s, nil); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.steps, r.path()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if m.State() != tc.steps[len(tc.steps)-1] {
				t.Errorf("State() = %s", m.State())
			}
			if err := m.To(ctx, tc.bad, nil); err == nil {
				t.Errorf("transition %s → %s was allowed", m.State(), tc.bad)
			}
			if len(r.events) != len(tc.steps) {
				t.Errorf("a refused transition was reported")
			}
			if e := r.events[0]; e.Node != "main/1" || e.Name != "run: echo hi" || e.From != Pending || e.CacheKey != "abc" {
				t.Errorf("first event %+v", e)
			}
		})
	}
}

func TestKindRules(t *testing.T) {
	ctx := context.Background()
	s := New("s", "s", Step, nil)
	for _, st := range []State{CheckingCache, Creating, Running} {
		if err := s.To(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.To(ctx, Passed, nil); err == nil {
		t.Error("a step passed like a test")
	}
	tst := New("t", "t", Test, nil)
	for _, st := range []State{CheckingCache, Creating, Running} {
		if err := tst.To(ctx, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tst.To(ctx, Committing, nil); err == nil {
		t.Error("a test committed a layer")
	}
	if !Passed.Final() || Running.Final() {
		t.Error("Final is wrong")
	}
}

// TestElapsed checks that every event carries the time since the node
// left Pending, while Duration is the time in the state it leaves: the
// event that ends a node carries its whole duration. A retried node
// starts again.
func TestElapsed(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	created := time.Now()
	m := New("main/0", "run: sleep", Step, r)
	time.Sleep(30 * time.Millisecond) // pending: waiting is not the node's time
	for _, s := range []State{CheckingCache, Creating, Running, Failed, CheckingCache} {
		if s == Failed {
			time.Sleep(50 * time.Millisecond) // the step's process runs
		}
		if err := m.To(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	first, failed, retried := r.events[0], r.events[3], r.events[4]
	if first.Elapsed != 0 || first.Duration < 30*time.Millisecond {
		t.Errorf("leaving pending: elapsed %s (want 0), duration %s (want ≥ 30ms)", first.Elapsed, first.Duration)
	}
	if failed.Elapsed < 50*time.Millisecond || failed.Duration > failed.Elapsed {
		t.Errorf("failed: elapsed %s (want ≥ 50ms), duration %s (want ≤ elapsed)", failed.Elapsed, failed.Duration)
	}
	if failed.Elapsed > failed.Time.Sub(created)-30*time.Millisecond {
		t.Errorf("failed: elapsed %s counts the 30ms pending (%s since New)", failed.Elapsed, failed.Time.Sub(created))
	}
	for i := 1; i < 4; i++ {
		if r.events[i].Elapsed < r.events[i-1].Elapsed {
			t.Errorf("elapsed went back: %s then %s", r.events[i-1].Elapsed, r.events[i].Elapsed)
		}
	}
	if retried.Elapsed != 0 {
		t.Errorf("retried: elapsed %s, want 0 (it starts again)", retried.Elapsed)
	}
}
