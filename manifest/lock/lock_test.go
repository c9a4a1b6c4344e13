package lock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	d1 = "sha256:" + strings.Repeat("1", 64)
	d2 = "sha256:" + strings.Repeat("2", 64)
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	want := &File{
		Images:  map[string]string{"127.0.0.1:5000/busybox:latest": d1},
		Modules: map[string]string{"oci://127.0.0.1:5000/mods/user:1": d2},
	}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read mismatch (-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(path)
	wantText := header + "images:\n  127.0.0.1:5000/busybox:latest: " + d1 + "\nmodules:\n  oci://127.0.0.1:5000/mods/user:1: " + d2 + "\n"
	if diff := cmp.Diff(wantText, string(b)); diff != "" {
		t.Errorf("file mismatch (-want +got):\n%s", diff)
	}
}

func TestReadRejects(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"unknown key", "bases: {}\n", "field bases not found"},
		{"not a digest", "images:\n  a.io/b:1: latest\n", `a.io/b:1: "latest" is not a sha256 digest`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), Name)
			if err := os.WriteFile(path, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Read: error = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Read(filepath.Join(t.TempDir(), Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want os.ErrNotExist", err)
	}
}

// TestReadConfined: a lock file linked out of its directory, or one that
// is not a regular file, is refused by name without being read; a link
// inside the directory is read.
func TestReadConfined(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("images:\n  SECRET: SECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(dir, path string) error
		want string // in the error; "" for none
	}{
		{"link inside", func(dir, path string) error {
			if err := Write(filepath.Join(dir, "real.lock"), &File{Images: map[string]string{"a.io/b:1": d1}}); err != nil {
				return err
			}
			return os.Symlink("real.lock", path)
		}, ""},
		{"link outside", func(_, path string) error { return os.Symlink(secret, path) }, "kiln.lock is a symlink to a path outside"},
		{"fifo", func(_, path string) error { return syscall.Mkfifo(path, 0o644) }, "kiln.lock is a named pipe"},
		{"directory", func(_, path string) error { return os.Mkdir(path, 0o755) }, "kiln.lock is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, Name)
			if err := tc.make(dir, path); err != nil {
				t.Fatal(err)
			}
			f, err := Read(path)
			if tc.want == "" {
				if err != nil || f.Images["a.io/b:1"] != d1 {
					t.Fatalf("Read = %v, %v", f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Read: error = %v, want one saying %q without the file's content", err, tc.want)
			}
		})
	}
}

func TestPin(t *testing.T) {
	f := &File{Images: map[string]string{"127.0.0.1:5000/busybox:latest": d1, "127.0.0.1:5000/app": d2}}
	for _, tc := range []struct{ ref, want string }{
		{"127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox@" + d1},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app@" + d2},
		{"127.0.0.1:5000/busybox:1.36", ""},
	} {
		got, ok := f.Pin(tc.ref)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Pin(%q) = %q, %v; want %q", tc.ref, got, ok, tc.want)
		}
	}
}

func TestCompare(t *testing.T) {
	locked := &File{Images: map[string]string{"a.io/x:1": d1}, Modules: map[string]string{"oci://a.io/m:1": d1}}
	now := &File{Images: map[string]string{"a.io/x:1": d1, "a.io/y:1": d2}, Modules: map[string]string{"oci://a.io/m:1": d2}}
	want := []Drift{
		{Kind: "image", Ref: "a.io/y:1", Now: d2},
		{Kind: "module", Ref: "oci://a.io/m:1", Locked: d1, Now: d2},
	}
	got := locked.Compare(now)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Compare mismatch (-want +got):\n%s", diff)
	}
	if s := got[0].String(); s != "image a.io/y:1 is not in kiln.lock" {
		t.Errorf("String() = %q", s)
	}
	if s := got[1].String(); s != "module oci://a.io/m:1 is "+d2+" now, kiln.lock has "+d1 {
		t.Errorf("String() = %q", s)
	}
	if d := locked.Compare(locked); len(d) != 0 {
		t.Errorf("a lock compared with itself drifts: %v", d)
	}
}

func TestPinFor(t *testing.T) {
	f := &File{
		Images:    map[string]string{"a.io/index:1": d1, "a.io/image:1": d2},
		Platforms: map[string]map[string]string{"a.io/index:1": {"linux/arm64": d2}},
	}
	for _, tc := range []struct {
		ref, p, want   string
		ok, platformOK bool
	}{
		{"a.io/index:1", "linux/arm64", "a.io/index@" + d2, true, true},
		{"a.io/index:1", "linux/amd64", "", true, false},
		{"a.io/image:1", "linux/arm64", "a.io/image@" + d2, true, true},
		{"a.io/other:1", "linux/arm64", "", false, false},
	} {
		got, ok, pok := f.PinFor(tc.ref, tc.p)
		if got != tc.want || ok != tc.ok || pok != tc.platformOK {
			t.Errorf("PinFor(%q, %q) = %q, %v, %v; want %q, %v, %v", tc.ref, tc.p, got, ok, pok, tc.want, tc.ok, tc.platformOK)
		}
	}
}

func TestComparePlatforms(t *testing.T) {
	locked := &File{Images: map[string]string{"a.io/x:1": d1}, Platforms: map[string]map[string]string{"a.io/x:1": {"linux/amd64": d1, "linux/arm64": d1}}}
	now := &File{Images: map[string]string{"a.io/x:1": d2}, Platforms: map[string]map[string]string{"a.io/x:1": {"linux/amd64": d1, "linux/arm64": d2, "linux/s390x": d2}}}
	want := []Drift{
		{Kind: "image", Ref: "a.io/x:1", Locked: d1, Now: d2},
		{Kind: "image", Ref: "a.io/x:1 (linux/arm64)", Locked: d1, Now: d2},
		{Kind: "image", Ref: "a.io/x:1 (linux/s390x)", Now: d2},
	}
	if diff := cmp.Diff(want, locked.Compare(now)); diff != "" {
		t.Errorf("Compare mismatch (-want +got):\n%s", diff)
	}
}
