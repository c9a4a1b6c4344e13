package executor

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/fsm"
)

type outputs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *outputs) Output(node string, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
}

func (o *outputs) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func TestTailMasksSecrets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets map[string][]byte
		writes  []string
		want    string
	}{
		{"split across writes", map[string][]byte{"a": []byte("hunter2")}, []string{"pass=hun", "ter2\nnext\n"}, "pass=****\nnext\n"},
		{"no newline at the end", map[string][]byte{"a": []byte("hunter2")}, []string{"x hunter2"}, "x ****"},
		{"every line of a multi-line secret", map[string][]byte{"k": []byte("-----BEGIN KEY-----\nabcdef\n-----END KEY-----\n")}, []string{"-----BEGIN KEY-----\n", "abcdef\n-----END KEY-----\n"}, "****\n****\n****\n"},
		{"longest first", map[string][]byte{"a": []byte("token"), "b": []byte("token-long")}, []string{"token-long token\n"}, "**** ****\n"},
		{"short values are not masked", map[string][]byte{"a": []byte("ab")}, []string{"abc\n"}, "abc\n"},
		{"no secrets", nil, []string{"plain ", "output\n"}, "plain output\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &observerOutputs{}
			r := &run{opts: Options{Secrets: tc.secrets}, obs: obs}
			tl := &tail{node: "n", obs: obs, secrets: r.secretLines()}
			for _, w := range tc.writes {
				if _, err := tl.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			tl.flush()
			if got := obs.out.String(); got != tc.want {
				t.Errorf("observer got %q, want %q", got, tc.want)
			}
			for _, v := range tc.secrets {
				if len(v) >= 3 && strings.Contains(tl.String(), strings.Split(string(v), "\n")[0]) {
					t.Errorf("the kept output %q holds a secret", tl.String())
				}
			}
		})
	}
	// Without secrets, output is passed on at once, not line by line.
	obs := &observerOutputs{}
	tl := &tail{node: "n", obs: obs}
	tl.Write([]byte("partial")) //nolint:errcheck // cannot fail
	if obs.out.String() != "partial" {
		t.Errorf("without secrets, output was held back: %q", obs.out.String())
	}
}

// observerOutputs is an fsm.Observer that keeps the output.
type observerOutputs struct {
	out outputs
}

func (o *observerOutputs) Event(fsm.Event)              {}
func (o *observerOutputs) Output(node string, p []byte) { o.out.Output(node, p) }

// TestTailWaitsForRunning checks that a tail made for a node's process
// holds output back until start (the node is running), then passes it on
// in order; what a process that never ran printed is kept for its error
// but never passed on.
func TestTailWaitsForRunning(t *testing.T) {
	obs := &observerOutputs{}
	r := &run{obs: obs}
	n := &dag.Node{Key: "main/0"}
	tl := r.newTail(n)
	tl.Write([]byte("early\n")) //nolint:errcheck // cannot fail
	if got := obs.out.String(); got != "" {
		t.Errorf("before start, the observer got %q", got)
	}
	tl.start()
	tl.Write([]byte("late\n")) //nolint:errcheck // cannot fail
	tl.flush()
	if got := obs.out.String(); got != "early\nlate\n" {
		t.Errorf("the observer got %q, want early then late", got)
	}

	obs = &observerOutputs{}
	r = &run{obs: obs}
	never := r.newTail(n)
	never.Write([]byte("printed while the container was made\n")) //nolint:errcheck // cannot fail
	never.flush()
	if got := obs.out.String(); got != "" {
		t.Errorf("a node that never ran passed on %q", got)
	}
	if !strings.Contains(never.String(), "printed while") {
		t.Errorf("the kept output %q lost what was printed", never.String())
	}
}
