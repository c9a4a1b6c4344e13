package module

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/manifest"
)

// newRegistry starts an in-memory registry and returns its host:port and
// a way to stop it early.
func newRegistry(t *testing.T) (string, func()) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

func newClient(t *testing.T) *registry.Client {
	t.Helper()
	rc, err := registry.New(registry.Options{
		Keychain: authn.NewMultiKeychain(),
		Backoff:  &remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const greetModule = `---
name: greet
description: Writes a greeting.
params:
  who: {default: world, description: whom to greet}
---
steps:
  - copy: {src: files/greeting, dst: /greeting}
`

func newModuleDir(t *testing.T, greeting string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{manifest.ModuleFile: greetModule, "files/greeting": greeting})
	return dir
}

func TestPackIsReproducible(t *testing.T) {
	ctx := context.Background()
	a, err := Pack(ctx, newModuleDir(t, "hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Pack(ctx, newModuleDir(t, "hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Pack(ctx, newModuleDir(t, "bye\n"))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if da != db {
		t.Errorf("the same files packed twice: %s and %s", da, db)
	}
	if da == dc {
		t.Errorf("different files packed to the same digest %s", da)
	}
	m, err := a.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	got := []string{m.ArtifactType, string(m.Config.MediaType), string(m.Layers[0].MediaType)}
	if diff := cmp.Diff([]string{ArtifactType, ConfigMediaType, LayerMediaType}, got); diff != "" {
		t.Errorf("media types mismatch (-want +got):\n%s", diff)
	}
	if _, err := Pack(ctx, t.TempDir()); err == nil || !strings.Contains(err.Error(), "no module.yml in it") {
		t.Errorf("Pack of an empty directory: error = %v, want no module.yml", err)
	}
}

// TestPushPull publishes a module, pulls it by tag and by digest, and
// checks what the cache and a Resolver give, also offline.
func TestPushPull(t *testing.T) {
	ctx := context.Background()
	host, stop := newRegistry(t)
	rc := newClient(t)
	ref, err := Reference(rc, "oci://"+host+"/mods/greet:1")
	if err != nil {
		t.Fatal(err)
	}
	d1, err := Push(ctx, rc, newModuleDir(t, "hello\n"), ref)
	if err != nil {
		t.Fatal(err)
	}
	c := Open(t.TempDir(), rc)
	e, err := c.Pull(ctx, "oci://"+host+"/mods/greet:1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Digest != d1.String() {
		t.Errorf("pulled digest %s, pushed %s", e.Digest, d1)
	}
	b, err := os.ReadFile(filepath.Join(e.Dir, "files", "greeting"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("the pulled module's file: %q, %v; want hello", b, err)
	}
	if e.Config.Name != "greet" || len(e.Config.Params) != 1 || e.Config.Params[0].Default != "world" {
		t.Errorf("config = %+v, want greet with who=world", e.Config)
	}

	// re-pushing the tag: the tag resolves to the new module, the
	// digest and a pinning Resolver still to the old one
	d2, err := Push(ctx, rc, newModuleDir(t, "bye\n"), ref)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := c.Pull(ctx, "oci://"+host+"/mods/greet:1")
	if err != nil {
		t.Fatal(err)
	}
	if e2.Digest != d2.String() || e2.Digest == e.Digest {
		t.Errorf("after re-pushing, the tag gives %s, want %s", e2.Digest, d2)
	}
	pinned := &Resolver{Cache: c, Pins: map[string]string{"oci://" + host + "/mods/greet:1": d1.String()}, Locked: true}
	rm, err := pinned.ResolveModule(ctx, "oci://"+host+"/mods/greet:1")
	if err != nil {
		t.Fatal(err)
	}
	if rm.Digest != d1.String() {
		t.Errorf("the pinned resolver gave %s, want %s", rm.Digest, d1)
	}
	if _, err := pinned.ResolveModule(ctx, "oci://"+host+"/mods/other:1"); err == nil || !strings.Contains(err.Error(), "is not in the lock file") {
		t.Errorf("--locked, a source without a pin: error = %v", err)
	}

	es, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, e := range es {
		digests = append(digests, e.Digest)
	}
	if diff := cmp.Diff([]string{d1.String(), d2.String()}, digests, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}

	// offline: a digest and a tag pulled before come from the cache
	stop()
	if e, err := c.Pull(ctx, "oci://"+host+"/mods/greet@"+d1.String()); err != nil || e.Digest != d1.String() {
		t.Errorf("offline pull by digest: %v, %v", e.Digest, err)
	}
	if e, err := c.Pull(ctx, "oci://"+host+"/mods/greet:1"); err != nil || e.Digest != d2.String() {
		t.Errorf("offline pull by tag: %v, %v; want the newest pull %s", e.Digest, err, d2)
	}
	if _, err := c.Pull(ctx, "oci://"+host+"/mods/never:1"); err == nil {
		t.Error("offline pull of a module never pulled succeeded")
	}
}

func TestPullRejectsAnImage(t *testing.T) {
	ctx := context.Background()
	host, _ := newRegistry(t)
	rc := newClient(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Reference(rc, host+"/images/random:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Push(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.TempDir(), rc).Pull(ctx, "oci://"+host+"/images/random:1")
	if err == nil || !strings.Contains(err.Error(), "not a kiln module") {
		t.Errorf("pulling an image as a module: error = %v, want not a kiln module", err)
	}
	if r, err := Reference(rc, "oci://kiln/go:1"); err != nil || r.Name() != "index.docker.io/kiln/go:1" {
		t.Errorf("a module without a registry is Docker Hub's: %v, %v", r, err)
	}
}
