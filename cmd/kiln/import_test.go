package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/image/store"
)

func TestImportIsReproducible(t *testing.T) {
	enginetest.RequireRoot(t) // the trees hold root-owned files
	tree := enginetest.Busybox(t)
	// The same tree, made now: every time is the present, not the epoch.
	later := enginetest.Busybox(t)
	touchAll(t, later, time.Now())
	changed := enginetest.Busybox(t)
	if err := os.WriteFile(filepath.Join(changed, "etc", "motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lutimes(filepath.Join(changed, "etc", "motd"), []unix.Timeval{{}, {}}); err != nil {
		t.Fatal(err)
	}
	shared := newRoot(t)
	epoch := time.Unix(0, 0).UTC()
	sde := time.Unix(1700000000, 0).UTC()

	// Imports of one group must give one digest; of two groups, two.
	tests := []struct {
		name        string
		root        string
		dir         string
		epoch       string // SOURCE_DATE_EPOCH, "" for unset
		group       string
		wantCreated time.Time
	}{
		{name: "first", root: shared, dir: tree, group: "tree", wantCreated: epoch},
		{name: "again into the same root", root: shared, dir: tree, group: "tree", wantCreated: epoch},
		{name: "into a fresh root", root: newRoot(t), dir: tree, group: "tree", wantCreated: epoch},
		{name: "same tree with new times", root: newRoot(t), dir: later, group: "tree", wantCreated: epoch},
		{name: "a changed file", root: newRoot(t), dir: changed, group: "changed", wantCreated: epoch},
		{name: "SOURCE_DATE_EPOCH", root: newRoot(t), dir: tree, epoch: "1700000000", group: "sde", wantCreated: sde},
		{name: "SOURCE_DATE_EPOCH again", root: newRoot(t), dir: tree, epoch: "1700000000", group: "sde", wantCreated: sde},
		// Times are clamped to SOURCE_DATE_EPOCH, not set to it: the
		// epoch-old times of tree stay, the new ones of later do not.
		{name: "SOURCE_DATE_EPOCH with new times", root: newRoot(t), dir: later, epoch: "1700000000", group: "sde later", wantCreated: sde},
		{name: "SOURCE_DATE_EPOCH with new times again", root: newRoot(t), dir: later, epoch: "1700000000", group: "sde later", wantCreated: sde},
	}
	digests := map[string]string{} // test name → digest
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tt.epoch)
			d := importDigest(t, tt.root, tt.dir)
			digests[tt.name] = d

			s, err := store.Open(t.Context(), tt.root)
			if err != nil {
				t.Fatal(err)
			}
			img, err := s.Image(t.Context(), "busybox")
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCreated, cf.Created.UTC()); diff != "" {
				t.Errorf("config Created (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"/bin/sh"}, cf.Config.Cmd); diff != "" {
				t.Errorf("config Cmd (-want +got):\n%s", diff)
			}
		})
	}
	for i, a := range tests {
		for _, b := range tests[i+1:] {
			da, db := digests[a.name], digests[b.name]
			if da == "" || db == "" {
				continue
			}
			if same := da == db; same != (a.group == b.group) {
				t.Errorf("%q gave %s and %q gave %s: want the same digest %v", a.name, da, b.name, db, a.group == b.group)
			}
		}
	}
}

func TestImportSourceDateEpochInvalid(t *testing.T) {
	enginetest.RequireRoot(t)
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	r := kiln(t, newRoot(t), nil, "import", enginetest.Busybox(t), "-t", "busybox")
	if r.code == 0 || !strings.Contains(r.stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("exit %d, stderr %q: want a failure naming SOURCE_DATE_EPOCH", r.code, r.stderr)
	}
}

// touchAll sets the access and modification times of everything under
// dir, symlinks included, to when.
func touchAll(t *testing.T, dir string, when time.Time) {
	t.Helper()
	tv := unix.NsecToTimeval(when.UnixNano())
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.Lutimes(p, []unix.Timeval{tv, tv})
	})
	if err != nil {
		t.Fatal(err)
	}
}
