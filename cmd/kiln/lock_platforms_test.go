package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/image/platform"
)

// TestLockPlatforms: a base whose tag is an image index is locked by the
// index's digest and by each platform's manifest digest (checked against
// skopeo inspect --raw of the registry's index). When the tag then names
// an index whose foreign image changed, kiln outdated lists the index and
// that platform (not the host's), and kiln build --locked for both
// platforms still builds on the locked images.
func TestLockPlatforms(t *testing.T) {
	src, foreign := multiRoot(t)
	host := platform.Host()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/base/busybox:1"
	plats := host.String() + "," + foreign.String()
	baseDir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: ./v, dst: /v}\n", "v": "1\n"})
	mustKiln(t, src, "build", "--platform", plats, "-t", ref, "--push", baseDir)

	raw, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).Output()
	if err != nil {
		t.Skipf("skipping: skopeo inspect --raw: %v", err)
	}
	indexDigest := fmt.Sprintf("sha256:%x", sha256.Sum256(raw))
	perPlatform := indexPlatforms(t, "docker://"+ref, "--tls-verify=false")

	dir := writeContext(t, map[string]string{"kiln.yml": "from: " + ref + "\nsteps:\n  - copy: {src: ./a, dst: /a}\n", "a": "a\n"})
	root, _ := multiRoot(t)
	mustKiln(t, root, "lock", dir)
	data, err := os.ReadFile(filepath.Join(dir, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var lk struct {
		Images    map[string]string
		Platforms map[string]map[string]string
	}
	if err := yaml.Unmarshal(data, &lk); err != nil {
		t.Fatal(err)
	}
	if lk.Images[ref] != indexDigest {
		t.Errorf("kiln.lock locks %s to %s, want the index's digest %s:\n%s", ref, lk.Images[ref], indexDigest, data)
	}
	for _, p := range []platform.Platform{host, foreign} {
		if got := lk.Platforms[ref][p.String()]; got != perPlatform[p.String()] {
			t.Errorf("kiln.lock locks %s for %s to %q, want the index's %s:\n%s", ref, p, got, perPlatform[p.String()], data)
		}
	}

	// A build without the lock, recorded, for kiln outdated without one.
	mustKiln(t, root, "build", "--platform", plats, dir)

	// The tag now names an index whose foreign image has another config.
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	old, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, err := old.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, im.MediaType)
	var newer string
	for _, d := range im.Manifests {
		img, err := old.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if d.Platform.Architecture == foreign.Arch {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			cf = cf.DeepCopy()
			cf.Config.Env = append(cf.Config.Env, "NEWER=yes")
			if img, err = mutate.ConfigFile(img, cf); err != nil {
				t.Fatal(err)
			}
			h, _ := img.Digest()
			newer = h.String()
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: d.Platform}})
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}

	out := kiln(t, root, nil, "outdated", dir)
	if out.code != 1 {
		t.Errorf("outdated after the foreign image changed: exit %d, want 1\n%s%s", out.code, out.stdout, out.stderr)
	}
	want := ref + " (" + foreign.String() + ")\tlocked " + perPlatform[foreign.String()] + "\tnow " + newer
	if !strings.Contains(out.stdout, want+"\n") || strings.Contains(out.stdout, "("+host.String()+")") {
		t.Errorf("outdated printed\n%s\nwant the line %q and none for %s", out.stdout, want, host)
	}

	built := mustKiln(t, root, "build", "--locked", "--platform", plats, "-t", "app", dir)
	if strings.Contains(built.stderr, "stale") {
		t.Errorf("a --locked build warned of a stale lock:\n%s", built.stderr)
	}
	if r := mustKiln(t, root, "run", "--platform", foreign.String(), "app", "--", "sh", "-c", "echo ${NEWER:-locked}"); strings.TrimSpace(r.stdout) != "locked" {
		t.Errorf("the --locked %s image is on the new base (NEWER=%q), want the locked one", foreign, r.stdout)
	}
	// Without the lock, kiln outdated compares the recorded build's bases:
	// the foreign platform's changed, the host's did not.
	if err := os.Rename(filepath.Join(dir, "kiln.lock"), filepath.Join(dir, "lock.saved")); err != nil {
		t.Fatal(err)
	}
	out = kiln(t, root, nil, "outdated", dir)
	want = ref + " (" + foreign.String() + ")\tused " + perPlatform[foreign.String()] + "\tnow " + newer + "\n"
	if out.code != 1 || out.stdout != want {
		t.Errorf("outdated from the build record: exit %d, printed %q; want 1 and %q", out.code, out.stdout, want)
	}
	if err := os.Rename(filepath.Join(dir, "lock.saved"), filepath.Join(dir, "kiln.lock")); err != nil {
		t.Fatal(err)
	}

	// A lock of another shape: the platform's digest missing is an error
	// naming the base and the platform.
	delete(lk.Platforms[ref], foreign.String())
	data, err = yaml.Marshal(lk)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kiln.lock"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := kiln(t, root, nil, "build", "--locked", "--platform", plats, dir)
	if bad.code != 2 || !strings.Contains(bad.stderr, ref) || !strings.Contains(bad.stderr, foreign.String()) {
		t.Errorf("--locked without %s's digest: exit %d, stderr %q; want 2 and an error naming %s and %s", foreign, bad.code, bad.stderr, ref, foreign)
	}
}
