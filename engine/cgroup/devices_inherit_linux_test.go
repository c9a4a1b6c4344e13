package cgroup

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDeviceRulesInheritedV1 checks that on cgroup v1 the device rules
// are written once, into the parent group, whose children inherit them
// at creation (a dozen writes fewer per container), and that a child
// whose inherited rules are not kiln's (a parent changed behind kiln's
// back) still gets kiln's, and its filter works.
func TestDeviceRulesInheritedV1(t *testing.T) {
	m := newTestManager(t)
	mp, ok := m.mounts["devices"]
	if m.version != 1 || !ok {
		t.Skip("needs the cgroup v1 devices controller")
	}
	parent := filepath.Join(mp, m.parent)
	want := make([]string, len(deviceRules))
	for i, r := range deviceRules {
		want[i] = r.String()
	}
	slices.Sort(want)
	list := func(dir string) []string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, "devices.list"))
		if err != nil {
			t.Fatal(err)
		}
		l := strings.Split(strings.TrimSpace(string(b)), "\n")
		slices.Sort(l)
		return l
	}

	a := create(t, m, "a", Limits{})
	if got := list(parent); !slices.Equal(got, want) {
		t.Errorf("parent's device rules after a first group: %q, want %q", got, want)
	}
	b := create(t, m, "b", Limits{})
	if got := list(b.ctrl["devices"]); !slices.Equal(got, want) {
		t.Errorf("second group's device rules: %q, want %q", got, want)
	}
	checkDeviceFilter(t, b)
	for _, c := range []*Cgroup{a, b} {
		if err := c.Delete(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	// Someone allows every device in the parent: a new group must not
	// inherit that.
	// (Refused while the kernel still counts the removed children
	// online, for a moment after their rmdir.)
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = os.WriteFile(filepath.Join(parent, "devices.allow"), []byte("a"), 0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := list(parent); !slices.Equal(got, []string{"a *:* rwm"}) {
		t.Fatalf("parent's rules after allowing all: %q", got)
	}
	c := create(t, m, "c", Limits{})
	if got := list(c.ctrl["devices"]); !slices.Equal(got, want) {
		t.Errorf("device rules of a group under a parent that allows all: %q, want %q", got, want)
	}
	checkDeviceFilter(t, c)
}
