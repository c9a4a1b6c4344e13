package snapshot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSweepProbes sweeps the overlay probe directories, and the snapshot
// directories being made, of a kiln killed meanwhile at once, however
// young, and keeps those of a live one.
func TestSweepProbes(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := probePrefix + strconv.Itoa(cmd.Process.Pid) + "-123"
	live := probePrefix + strconv.Itoa(os.Getpid()) + "-456"
	deadNew := newPrefix + strconv.Itoa(cmd.Process.Pid) + "-789"
	liveNew := newPrefix + strconv.Itoa(os.Getpid()) + "-012"
	deadDel := delPrefix + strconv.Itoa(cmd.Process.Pid) + "-345"
	young := "young" // a snapshot being made: no owner record yet, kept for a while
	for _, name := range []string{dead, live, young, deadNew, liveNew, deadDel} {
		if err := os.MkdirAll(filepath.Join(dir, name, "merged"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	swept, err := Sweep(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(swept)
	wantSwept := []string{dead, deadNew, deadDel}
	sort.Strings(wantSwept)
	if d := cmp.Diff(wantSwept, swept); d != "" {
		t.Errorf("Sweep removed (-want +got):\n%s", d)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{live, liveNew, young}
	sort.Strings(want)
	if d := cmp.Diff(want, left); d != "" {
		t.Errorf("after Sweep (-want +got):\n%s", d)
	}
}
