package container

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
)

// buildCompanion builds cmd/kiln-init with ldflags into dir.
func buildCompanion(t *testing.T, dir, ldflags string) string {
	t.Helper()
	out := filepath.Join(dir, CompanionName)
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, "./cmd/kiln-init")
	cmd.Dir = enginetest.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kiln-init: %v\n%s", err, msg)
	}
	return out
}

// TestCompanion checks which kiln-init next to kiln is used as the
// containers' init: only one built from the same sources (the same
// stamped -ldflags), not writable by others, a regular file.
func TestCompanion(t *testing.T) {
	const flags = "-X github.com/kiln-build/kiln/engine/container.buildStamp=s1"
	built := buildCompanion(t, t.TempDir(), flags)
	self := func(ldflags string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: runtime.Version(), Settings: []debug.BuildSetting{{Key: "-ldflags", Value: ldflags}}}
	}
	for _, tc := range []struct {
		name   string
		self   *debug.BuildInfo
		stamp  string
		setup  func(t *testing.T, dir string) // makes dir/kiln-init
		wantOK bool
	}{
		{"same build", self(flags), "s1", copyTo(built, 0o755), true},
		// make build links kiln with the C linker (cgo), kiln-init not.
		{"kiln linked statically by cc", self(flags + " -linkmode external -extldflags -static"), "s1", copyTo(built, 0o755), true},
		{"kiln not stamped", self(""), "", copyTo(built, 0o755), false},
		{"other sources", self(strings.ReplaceAll(flags, "s1", "s2")), "s2", copyTo(built, 0o755), false},
		{"group-writable", self(flags), "s1", copyTo(built, 0o775), false},
		{"world-writable", self(flags), "s1", copyTo(built, 0o757), false},
		{"missing", self(flags), "s1", func(*testing.T, string) {}, false},
		{"symlink", self(flags), "s1", func(t *testing.T, dir string) {
			if err := os.Symlink(built, filepath.Join(dir, CompanionName)); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"not a Go program", self(flags), "s1", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, CompanionName), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "kiln")
			if err := os.WriteFile(exe, nil, 0o755); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			got := companion(exe, tc.self, tc.stamp)
			if want := filepath.Join(dir, CompanionName); (got == want) != tc.wantOK || (!tc.wantOK && got != "") {
				t.Errorf("companion = %q, want found %v", got, tc.wantOK)
			}
		})
	}
}

func copyTo(src string, mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, CompanionName)
		if err := os.WriteFile(p, b, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCompanionRunsContainers runs containers with cmd/kiln-init as
// their init: a process with its exit status, the escapes of
// TestEscapesFail (masks, device filter, capabilities, seccomp), and an
// exec through the helper it starts.
func TestCompanionRunsContainers(t *testing.T) {
	e := newEnv(t)
	init := buildCompanion(t, t.TempDir(), "")
	rt, err := New(context.Background(), filepath.Join(e.root, "companion"), WithCgroupParent(e.parent), WithInit(init))
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	r := e.run(context.Background(), engine.Spec{Process: sh("echo hi; exit 3")})
	if r.status.Code != 3 || r.stdout != "hi\n" {
		t.Errorf("run: %+v, stdout %q; want code 3, hi", r.status, r.stdout)
	}
	checkEscapesFail(t, e)
	ctx := context.Background()
	mounts, err := e.sn.Prepare(ctx, "exec", []string{e.lower})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rt.Create(ctx, engine.Spec{ID: "exec", Rootfs: mounts, Process: sh("sleep 100"), Exec: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(ctx) //nolint:errcheck // checked below
	st, err := c.Exec(ctx, sh("exit 4"))
	if err != nil || st.Code != 4 {
		t.Errorf("exec: %+v, %v; want code 4", st, err)
	}
	if err := c.Delete(ctx); err != nil {
		t.Error(err)
	}
}
