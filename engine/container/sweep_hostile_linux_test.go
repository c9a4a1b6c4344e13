package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/internal/owner"
)

// TestSweepContainersBeingMade: the directory of a container being made
// (.new-<pid>-…, renamed to its ID once its state is in it) is kept while
// its kiln runs and swept once it is gone, however young.
func TestSweepContainersBeingMade(t *testing.T) {
	enginetest.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "containers")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := newPrefix + strconv.Itoa(cmd.Process.Pid) + "-123"
	live := newPrefix + strconv.Itoa(os.Getpid()) + "-456"
	deadDel := delPrefix + strconv.Itoa(cmd.Process.Pid) + "-789"
	for _, name := range []string{dead, live, deadDel} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	parent := fmt.Sprintf("kiln-test-%d-sweep", os.Getpid())
	t.Cleanup(func() {
		for _, ctrl := range []string{"pids", "memory", "cpu", "devices", "freezer"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", ctrl, parent))
		}
		os.Remove(filepath.Join("/sys/fs/cgroup/unified", parent))
	})
	r, err := New(context.Background(), dir, WithCgroupParent(parent))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, live)); err != nil {
		t.Errorf("the directory a live kiln is making was swept: %v", err)
	}
	for _, name := range []string{dead, deadDel} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s, of a dead kiln, was not swept", name)
		}
	}
	// makeDir: the state is there as soon as the directory is, and a
	// second container of the name is ErrExists.
	st := state{ID: "c1", Owner: owner.Self()}
	if err := r.makeDir(st); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.statePath("c1")); err != nil {
		t.Errorf("state of a made container: %v", err)
	}
	if err := r.makeDir(st); !errors.Is(err, engine.ErrExists) {
		t.Errorf("making c1 again: %v, want %v", err, engine.ErrExists)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 { // c1 and live
		t.Errorf("containers dir holds %v, want c1 and %s", ents, live)
	}
}

// TestMountedNamesMountpointsByPid: Mounted's mountpoints are named after
// the process, so that the store's startup sweep of tmp/ removes those a
// killed kiln left.
func TestMountedNamesMountpointsByPid(t *testing.T) {
	enginetest.RequireRoot(t)
	tmp := t.TempDir()
	lower := t.TempDir()
	var names []string
	err := Mounted(tmp, [][]engine.Mount{{{Type: "bind", Source: lower, Options: []string{"rbind", "ro"}}}}, func(roots []string) error {
		ents, err := os.ReadDir(tmp)
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	prefix := strconv.Itoa(os.Getpid()) + "-mnt-"
	if len(names) != 1 || len(names[0]) <= len(prefix) || names[0][:len(prefix)] != prefix {
		t.Errorf("mountpoints %v, want one named %s<random>", names, prefix)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("Mounted left %v in tmp", ents)
	}
}
