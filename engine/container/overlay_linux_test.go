package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestMountedDeepOverlay mounts read-only overlays of 300 and 500
// layers, each layer a directory with a long name as the store's
// layers/<diffid> are (mount(2) took ~54 of them in its one page of
// options), and reads a file of each layer through the mount.
func TestMountedDeepOverlay(t *testing.T) {
	enginetest.RequireRoot(t)
	if !OverlayLayersUnlimited() {
		t.Skip("the kernel takes no lowerdir+ (before Linux 6.8): mount(2)'s page limit applies")
	}
	for _, n := range []int{300, 500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dir := t.TempDir()
			lowers := make([]string, n)
			for i := range lowers {
				lowers[i] = filepath.Join(dir, "layers", fmt.Sprintf("%064x", i))
				if err := os.MkdirAll(lowers[i], 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(lowers[i], fmt.Sprintf("f%d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			m := engine.Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}}
			err := Mounted(t.TempDir(), [][]engine.Mount{{m}}, func(roots []string) error {
				for i := range n {
					b, err := os.ReadFile(filepath.Join(roots[0], fmt.Sprintf("f%d", i)))
					if err != nil {
						return err
					}
					if string(b) != fmt.Sprint(i) {
						return fmt.Errorf("f%d holds %q", i, b)
					}
				}
				if err := os.WriteFile(filepath.Join(roots[0], "x"), nil, 0o644); err == nil {
					return fmt.Errorf("a write to the read-only overlay succeeded")
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
