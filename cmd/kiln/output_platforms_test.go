package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestPlatformsArchivesAndPush: a build for two platforms writes its
// index to an OCI archive (skopeo inspect --raw oci-archive: shows both
// platforms) and a docker archive of the host's image, or of the one
// platform= names (skopeo inspect docker-archive:); pull --platform from
// the OCI layout in the archive gives that platform's image; kiln push
// of the index's name sends the whole index (skopeo reads it from the
// registry), every blob once (the registry's access log), though the
// two images share a layer.
func TestPlatformsArchivesAndPush(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // the copy's layers are then the same for both platforms
	out := t.TempDir()
	ociTar, dockerTar, foreignTar := filepath.Join(out, "x.tar"), filepath.Join(out, "d.tar"), filepath.Join(out, "f.tar")
	mustKiln(t, root, "build", "--platform", host.String()+","+foreign.String(), "-f", "../../examples/hello/app.yml", "-t", "hello",
		"--output", "type=oci,dest="+ociTar, "--output", "type=docker,dest="+dockerTar, "--output", "type=docker,dest="+foreignTar+",platform="+foreign.String())
	want := indexPlatforms(t, "oci-archive:"+ociTar)
	if len(want) != 2 || want[host.String()] == "" || want[foreign.String()] == "" {
		t.Fatalf("the OCI archive's index has %v, want %s and %s", want, host, foreign)
	}
	for file, p := range map[string]platform.Platform{dockerTar: host, foreignTar: foreign} {
		b, err := exec.Command("skopeo", "inspect", "docker-archive:"+file).Output()
		if err != nil {
			t.Fatalf("skopeo inspect docker-archive:%s: %v", file, err)
		}
		var in struct{ Architecture string }
		if err := json.Unmarshal(b, &in); err != nil || in.Architecture != p.Arch {
			t.Errorf("the docker archive %s holds a %q image (%v), want %s", filepath.Base(file), in.Architecture, err, p)
		}
	}

	// pull --platform from the OCI layout the archive holds.
	dir := t.TempDir()
	if b, err := exec.Command("tar", "-xf", ociTar, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf %s: %v\n%s", ociTar, err, b)
	}
	empty := newRoot(t)
	for _, p := range []platform.Platform{foreign, host} {
		d := strings.TrimSpace(mustKiln(t, empty, "pull", "--platform", p.String(), "oci-layout:"+dir+":latest", "-t", "pulled").stdout)
		if got := inspectJSON(t, empty, "--platform", p.String(), "pulled").Digest; got != want[p.String()] {
			t.Errorf("pull --platform %s of the layout stored %s (printed %s), want %s", p, got, d, want[p.String()])
		}
	}

	// kiln push of the index: the images share the copy's layer.
	shared := 0
	for _, hl := range inspectJSON(t, root, "--platform", host.String(), "hello").Layers {
		for _, fl := range inspectJSON(t, root, "--platform", foreign.String(), "hello").Layers {
			if hl.Digest == fl.Digest {
				shared++
			}
		}
	}
	if shared == 0 {
		t.Errorf("the two images share no layer: the push's check below proves less")
	}
	reg, ca := loggedInRegistry(t, root)
	ref := reg.host + "/hello:pushed"
	mustKiln(t, root, "push", "hello", ref, ca)
	pushed := indexPlatforms(t, "docker://"+ref, "--cert-dir", reg.certDir, "--creds", reg.user+":"+reg.password)
	if pushed[host.String()] != want[host.String()] || pushed[foreign.String()] != want[foreign.String()] {
		t.Errorf("the registry's index has %v, want %v", pushed, want)
	}
	reg.blobUploads(t) // waits for the log to hold every request
	log, err := os.ReadFile(reg.log)
	if err != nil {
		t.Fatal(err)
	}
	uploads := map[string]int{}
	for _, m := range regexp.MustCompile(`"PUT /v2/hello/blobs/uploads/[^ "]*digest=sha256(?::|%3A)([0-9a-f]{64})`).FindAllStringSubmatch(string(log), -1) {
		uploads[m[1]]++
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	// the layout's blobs: the index, 2 manifests, and the configs and
	// layers, which are what is uploaded as blobs
	if len(uploads) != len(blobs)-3 {
		t.Errorf("the push uploaded %d blobs, want %d (the layout's configs and layers): %v", len(uploads), len(blobs)-3, uploads)
	}
	for d, n := range uploads {
		if n != 1 {
			t.Errorf("blob sha256:%s was uploaded %d times, want once", d, n)
		}
	}
}
