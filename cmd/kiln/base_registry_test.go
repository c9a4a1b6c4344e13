package main

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestBuildFromRegistryBase builds FROM an image in a registry (an
// in-process one on 127.0.0.1, plain HTTP): the base is pulled into the
// store once, and a second build on the same root does not pull again.
func TestBuildFromRegistryBase(t *testing.T) {
	enginetest.RequireRoot(t)
	var blobGets atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			blobGets.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/base/busybox:1"

	// Publish the base from one root...
	src := newRoot(t)
	mustKiln(t, src, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	mustKiln(t, src, "push", "busybox", ref)

	// ...and build FROM it on another, empty one.
	root := newRoot(t)
	dir := t.TempDir()
	manifest := "from: " + ref + "\nsteps:\n  - run: echo pulled > /marker\nimage:\n  cmd: [cat, /marker]\n"
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	blobGets.Store(0)
	mustKiln(t, root, "build", "-t", "app", dir)
	if blobGets.Load() == 0 {
		t.Fatal("the build did not pull the base's blobs from the registry")
	}
	if r := mustKiln(t, root, "run", "app"); r.stdout != "pulled\n" {
		t.Errorf("the built image printed %q", r.stdout)
	}
	blobGets.Store(0)
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(manifest+"tests:\n  - name: again\n    run: test -f /marker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "build", dir)
	if n := blobGets.Load(); n != 0 {
		t.Errorf("the second build fetched %d blobs again; the pulled base should be reused", n)
	}
	// --push sends every -t tag to its registry.
	pushed := strings.TrimPrefix(srv.URL, "http://") + "/built/app:2"
	built := strings.TrimSpace(mustKiln(t, root, "build", "-t", pushed, "--push", dir).stdout)
	desc, err := remote.Get(mustRef(t, pushed))
	if err != nil {
		t.Fatalf("the pushed image is not in the registry: %v", err)
	}
	if desc.Digest.String() != built {
		t.Errorf("registry has %s, the build printed %s", desc.Digest, built)
	}
	if r := kiln(t, root, nil, "build", "--push", dir); r.code == 0 {
		t.Error("build --push without -t succeeded")
	}

	// A short name that is not in the store is pulled from Docker Hub
	// (which TestMain's registries.conf makes unreachable): the error
	// names the full name tried and how to get it.
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte("from: nosuchimage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kiln(t, root, nil, "build", dir)
	for _, want := range []string{"kiln.yml:1", "pulling docker.io/library/nosuchimage:latest failed", "kiln import DIR -t nosuchimage", "kiln pull docker.io/library/nosuchimage:latest"} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("build from a missing short name: exit %d, stderr %q, want %q", r.code, r.stderr, want)
		}
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
