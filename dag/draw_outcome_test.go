package dag

import (
	"strings"
	"testing"
	"time"
)

func TestDOTOutcomes(t *testing.T) {
	g, err := Compile(multiStage())
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]NodeOutcome{
		"deps/base": {Outcome: OutcomeCached, Duration: 3 * time.Millisecond},
		"deps/0":    {Outcome: OutcomeCached},
		"deps/1":    {Outcome: OutcomeRan, Duration: 1500 * time.Millisecond},
		"build/0":   {Outcome: OutcomeFailed, Duration: 250 * time.Millisecond},
		"build/1":   {Outcome: "bogus"}, // drawn as not run
	}
	b, err := g.DOTOutcomes(outcomes)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "multistage-outcomes.dot", b)
	plain, err := g.DOT()
	if err != nil {
		t.Fatal(err)
	}
	// The same nodes and edges as DOT draws.
	if got, want := strings.Count(string(b), "->"), strings.Count(string(plain), "->"); got != want {
		t.Errorf("DOTOutcomes has %d edges, DOT %d", got, want)
	}
}
