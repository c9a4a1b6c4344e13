package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/engine"
)

// TestMountStubsDoNotReachTheLayer runs a container that changes
// nothing, but whose mounts need mountpoints the image lacks (busybox
// has no /etc/resolv.conf, /etc/hosts or /data): its diff must be empty.
func TestMountStubsDoNotReachTheLayer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "tool"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.run(ctx, engine.Spec{
		Process: sh("cat /data/tool; cat /opt/kiln/file; ls /etc/resolv.conf; echo x > /data/tool || echo read-only"),
		Network: engine.NetworkHost,
		Mounts: []engine.Mount{
			{Type: "bind", Source: data, Target: "/data", Options: []string{"ro"}},
			{Type: "bind", Source: filepath.Join(data, "tool"), Target: "/opt/kiln/file", Options: []string{"ro"}},
		},
	})
	if r.stdout != "from the host\nfrom the host\n/etc/resolv.conf\nread-only\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	var diff bytes.Buffer
	if err := e.sn.Diff(ctx, r.key, &diff, engine.DiffOptions{}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&diff)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("the layer of a container that changed nothing has %s", h.Name)
	}
}

func TestBadMountIsAClearError(t *testing.T) {
	e := newEnv(t)
	_, err := e.tryRun(context.Background(), engine.Spec{
		Process: sh("true"),
		Mounts:  []engine.Mount{{Type: "bind", Source: "/no/such/dir", Target: "/x"}},
	})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("/no/such/dir")) {
		t.Errorf("error %v, want one naming the missing source", err)
	}
}
