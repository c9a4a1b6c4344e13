package toolbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/jinja"
)

func TestParseEntry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Entry
		err  bool
	}{
		{in: "./tools", want: Entry{Name: "tools", Dir: "./tools"}},
		{in: "ci/bin/", want: Entry{Name: "bin", Dir: "ci/bin/"}},
		{in: "helpers=./tools", want: Entry{Name: "helpers", Dir: "./tools"}},
		{in: "image:127.0.0.1:5000/tools/jq:1.7", want: Entry{Name: "jq", Image: "127.0.0.1:5000/tools/jq:1.7"}},
		{in: "image:busybox", want: Entry{Name: "busybox", Image: "busybox"}},
		{in: "image:r.io/yq@sha256:abc", want: Entry{Name: "yq", Image: "r.io/yq@sha256:abc"}},
		{in: "q=image:r.io/yq:4", want: Entry{Name: "q", Image: "r.io/yq:4"}},
		{in: "image:", err: true},
		{in: ".", err: true},
		{in: "x=", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEntry(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("ParseEntry(%q) error %v, want error %v", tc.in, err, tc.err)
			}
			if tc.err {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	got := Mounts("/usr/bin/kiln", "/tmp/v.json", []Tool{
		{Name: "dir", Dirs: []string{"/ctx/tools"}},
		{Name: "img", Dirs: []string{"/l/base", "/l/top"}},
	})
	ro := []string{"ro", "nosuid", "nodev"}
	want := []engine.Mount{
		{Type: "tmpfs", Source: "tmpfs", Target: "/.kiln", Options: []string{"mode=755", "size=1m", "nosuid", "nodev"}},
		{Type: "bind", Source: "/usr/bin/kiln", Target: "/.kiln/bin/kiln", Options: ro},
		{Type: "bind", Source: "/tmp/v.json", Target: "/.kiln/values.json", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
		{Type: "bind", Source: "/ctx/tools", Target: "/.kiln/toolbox/dir", Options: ro},
		{Type: "overlay", Source: "overlay", Target: "/.kiln/toolbox/img", Options: []string{"ro", "nosuid", "nodev", "lowerdir=/l/top:/l/base"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestValues: the values a template step renders with in a container
// come back as the build had them: maps in their order (templates
// iterate them so), integers as int64, floats as floats (2.0 too).
func TestValues(t *testing.T) {
	m := jinja.NewDict()
	m.Set("z", 2)
	m.Set("a", map[string]any{"k": 1})
	in := map[string]any{"n": 3, "f": 1.5, "g": 2.0, "s": "x", "l": []any{1, "y"}, "m": m}
	p, err := WriteValues(t.TempDir(), "v-*.json", in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadValues(p)
	if err != nil {
		t.Fatal(err)
	}
	gm, ok := got["m"].(*jinja.Dict)
	if !ok {
		t.Fatalf("m is a %T, want a *jinja.Dict", got["m"])
	}
	if j, _ := json.Marshal(gm); string(j) != `{"z":2,"a":{"k":1}}` {
		t.Errorf("m = %s, want its keys in their order", j)
	}
	delete(got, "m")
	want := map[string]any{"n": int64(3), "f": 1.5, "g": 2.0, "s": "x", "l": []any{int64(1), "y"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStatic(t *testing.T) {
	// /proc/self/exe is this test binary, built with cgo or not; a
	// shell script is no ELF at all.
	script := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Static(script); err == nil {
		t.Error("a shell script was read as an ELF binary")
	}
	dyn := "/bin/sh" // dash: dynamically linked on Debian
	if ok, err := Static(dyn); err != nil || ok {
		t.Errorf("Static(%s) = %v, %v; want false", dyn, ok, err)
	}
	if ok, err := Static("/bin/busybox"); err == nil && !ok {
		t.Error("busybox-static read as dynamic")
	}
}

// TestRecord: a record survives its encoding, values' numbers included,
// and resolves to the tools that are still there, with a warning for
// each of the others.
func TestRecord(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	gone := filepath.Join(t.TempDir(), "gone")
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := NewRecord("/usr/bin/kiln", map[string]any{"n": 9007199254740993, "s": "x"}, []Tool{
		{Name: "here", Dirs: []string{dir}, Entry: "./here"},
		{Name: "gone", Dirs: []string{gone}, Entry: "gone=./g"},
		{Name: "file", Dirs: []string{file}, Entry: "file=./f"},
		{Name: "img", Dirs: []string{"/l/a", "/l/b"}, Entry: "image:img", Image: "img", Digest: "sha256:aa"},
		{Name: "pruned", Dirs: []string{"/l/c"}, Entry: "image:pruned", Image: "pruned", Digest: "sha256:bb"},
		{Name: "scratch", Entry: "image:scratch", Image: "scratch"},
	})
	s, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRecord(s)
	if err != nil {
		t.Fatal(err)
	}
	if n := fmt.Sprint(got.Values["n"]); n != "9007199254740993" {
		t.Errorf("value n read back as %s", n)
	}
	images := func(_ context.Context, ref, digest string) ([]string, error) {
		if ref == "img" && digest == "sha256:aa" {
			return []string{"/l/a", "/l/b"}, nil
		}
		return nil, errors.New("not in the store")
	}
	tools, warnings := got.Resolve(ctx, images)
	wantTools := []Tool{
		{Name: "here", Dirs: []string{dir}, Entry: "./here"},
		{Name: "img", Dirs: []string{"/l/a", "/l/b"}, Entry: "image:img", Image: "img", Digest: "sha256:aa"},
		{Name: "scratch", Entry: "image:scratch", Image: "scratch"},
	}
	if diff := cmp.Diff(wantTools, tools); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	wantWarnings := []string{
		`toolbox "gone=./g": stat ` + gone + `: no such file or directory: /.kiln/toolbox/gone is not mounted`,
		`toolbox "file=./f": ` + file + ` is no longer a directory: /.kiln/toolbox/file is not mounted`,
		`toolbox "image:pruned": not in the store: /.kiln/toolbox/pruned is not mounted`,
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if _, err := ParseRecord("{"); err == nil {
		t.Error("a broken record was read")
	}
}
