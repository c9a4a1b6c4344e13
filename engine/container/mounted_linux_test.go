package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine"
)

func TestMounted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mounts, err := e.sn.Prepare(ctx, "write", []string{e.lower})
	if err != nil {
		t.Fatal(err)
	}
	ro := []engine.Mount{{Type: "bind", Source: e.lower, Options: []string{"ro"}}}
	err = Mounted(t.TempDir(), [][]engine.Mount{mounts, ro}, func(roots []string) error {
		b, err := os.ReadFile(filepath.Join(roots[1], "etc/passwd"))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(roots[0], "copied"), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	upper, _ := engine.Writable(mounts)
	if b, err := os.ReadFile(filepath.Join(upper, "copied")); err != nil || !strings.HasPrefix(string(b), "root:") {
		t.Errorf("the write through the mount did not reach the snapshot: %q %v", b, err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), e.root) {
		t.Error("a mount outlived Mounted")
	}
	if err := Mounted(t.TempDir(), [][]engine.Mount{ro}, func(roots []string) error {
		return os.WriteFile(filepath.Join(roots[0], "x"), nil, 0o644)
	}); err == nil {
		t.Error("a write to a read-only mount succeeded")
	}
}
