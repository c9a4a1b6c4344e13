package idrange

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestNew takes the slots from the "kiln" entries when there are some,
// else from the default range less what other entries overlap.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, subuid, subgid string
		slots                int
		first                Range
	}{
		{"kiln entries", "alice:100000:65536\nkiln:200000:131072\n", "kiln:300000:200000\n", 2, Range{UID: 200000, GID: 300000}},
		{"default", "alice:100000:65536\n", "", DefaultSlots, Range{UID: DefaultStart, GID: DefaultStart}},
		{"default less an overlapping entry", "bob:1879048192:65537\n", "", DefaultSlots - 2, Range{UID: DefaultStart + 2*Size, GID: DefaultStart}},
		{"no files", "", "", DefaultSlots, Range{UID: DefaultStart, GID: DefaultStart}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			u, g := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			if tc.subuid != "" {
				os.WriteFile(u, []byte(tc.subuid), 0o644)
			}
			if tc.subgid != "" {
				os.WriteFile(g, []byte(tc.subgid), 0o644)
			}
			a, err := New(WithSubIDFiles(u, g), WithLockDir(dir))
			if err != nil {
				t.Fatal(err)
			}
			if a.Slots() != tc.slots || a.slots[0] != tc.first {
				t.Errorf("%d slots from %+v, want %d from %+v", a.Slots(), a.slots[0], tc.slots, tc.first)
			}
		})
	}
}

// TestAllocate never hands out a held slot, and fails once all are held.
func TestAllocate(t *testing.T) {
	dir := t.TempDir()
	u := filepath.Join(dir, "subuid")
	if err := os.WriteFile(u, []byte("kiln:100000:196608\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(WithSubIDFiles(u, u), WithLockDir(filepath.Join(dir, "locks")))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	var leases []*Lease
	for range 3 {
		l, err := a.Allocate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if seen[l.UID] {
			t.Fatalf("slot %d handed out twice", l.UID)
		}
		seen[l.UID] = true
		leases = append(leases, l)
	}
	if _, err := a.Allocate(context.Background()); err == nil {
		t.Fatal("a fourth slot out of three")
	}
	// A released slot is this process's again first; after Close,
	// another allocator (another kiln) gets it.
	leases[1].Release()
	l, err := a.Allocate(context.Background())
	if err != nil || l.UID != leases[1].UID {
		t.Fatalf("after a release got %v, %v; want slot %d", l, err, leases[1].UID)
	}
	l.Release()
	other, err := New(WithSubIDFiles(u, u), WithLockDir(filepath.Join(dir, "locks")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Allocate(context.Background()); err == nil {
		t.Fatal("another allocator got a slot this one keeps")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err := other.Allocate(context.Background()); err != nil || l.UID != leases[1].UID {
		t.Fatalf("after Close another allocator got %v, %v; want slot %d", l, err, leases[1].UID)
	}
}
