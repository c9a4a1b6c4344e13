package executor

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/lifecycle"
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

// observerOutputs is a lifecycle.Observer that keeps the output.
type observerOutputs struct {
	out outputs
}

func (o *observerOutputs) Event(lifecycle.Event)        {}
func (o *observerOutputs) Output(node string, p []byte) { o.out.Output(node, p) }
