package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestOutdated builds FROM a base in a registry (in-process, plain HTTP
// on 127.0.0.1), re-pushes the base's tag with another image: kiln
// outdated reports it, a build without --pull keeps the store's copy,
// and after build --pull nothing is outdated.
func TestOutdated(t *testing.T) {
	enginetest.RequireRoot(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/base/busybox:1"

	src := newRoot(t)
	mustKiln(t, src, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	mustKiln(t, src, "push", "busybox", ref)
	old := strings.TrimSpace(mustKiln(t, src, "inspect", "--format", "json", "busybox").stdout)

	root := newRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte("from: "+ref+"\nsteps:\n  - run: echo hi > /hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kiln(t, root, nil, "outdated", dir); r.code == 0 || !strings.Contains(r.stderr, "no build record") {
		t.Errorf("outdated before any build: exit %d, stderr %q", r.code, r.stderr)
	}
	mustKiln(t, root, "build", "--progress", "plain", dir)
	if r := mustKiln(t, root, "outdated", dir); r.stdout != "" {
		t.Errorf("outdated right after the build reported %q", r.stdout)
	}

	// Another image under the same tag.
	newer := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo newer > /newer\n"})
	mustKiln(t, src, "build", "--progress", "plain", "-t", "busybox:2", newer)
	// The registry's digest, which push prints: the local image keeps its
	// steps' layers uncompressed, the pushed one has them gzip.
	pushed := strings.TrimSpace(mustKiln(t, src, "push", "busybox:2", ref).stdout)
	_, next, _ := strings.Cut(pushed, "@")
	r := kiln(t, root, nil, "outdated", dir)
	if r.code != 1 {
		t.Errorf("outdated with an outdated base: exit %d, want 1 (as npm outdated)", r.code)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], ref+"\tused sha256:") || !strings.HasSuffix(lines[0], "\tnow "+next) {
		t.Errorf("outdated after the re-push printed %q, want %s used … now %s", r.stdout, ref, next)
	}
	if strings.Contains(old, next) {
		t.Fatalf("the re-pushed image has the old digest %s", next)
	}

	// Without --pull, the store's copy is used: still outdated.
	mustKiln(t, root, "build", "--progress", "plain", dir)
	if r := kiln(t, root, nil, "outdated", dir); r.code != 1 || !strings.Contains(r.stdout, next) {
		t.Errorf("outdated after a build without --pull: exit %d, printed %q", r.code, r.stdout)
	}
	mustKiln(t, root, "build", "--pull", "--progress", "plain", "-t", "app", dir)
	if r := mustKiln(t, root, "outdated", dir); r.stdout != "" {
		t.Errorf("outdated after build --pull reported %q", r.stdout)
	}
	if r := mustKiln(t, root, "run", "app", "--", "cat", "/newer"); r.stdout != "newer\n" {
		t.Errorf("the image built with --pull is not on the new base: %q", r.stdout)
	}
}
