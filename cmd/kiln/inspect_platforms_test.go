package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestImagesInspectPlatforms: after a build for two platforms, kiln
// images lists the index with a line for each platform's image, kiln
// inspect shows the index and its manifests, and inspect --platform one
// image; the digests are those skopeo inspect --raw reads in the OCI
// layout written by the same build.
func TestImagesInspectPlatforms(t *testing.T) {
	root, foreign := multiRoot(t)
	host := platform.Host()
	oci := filepath.Join(t.TempDir(), "oci")
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - copy: {src: ./a, dst: /a}\n", "a": "a\n"})
	index := strings.TrimSpace(mustKiln(t, root, "build", "--platform", host.String()+","+foreign.String(), "-t", "multi", "--output", "type=oci,dest="+oci, dir).stdout)
	want := indexPlatforms(t, "oci:"+oci+":latest")

	images := mustKiln(t, root, "images").stdout
	for _, p := range []platform.Platform{host, foreign} {
		line := regexp.MustCompile(`(?m)^\s+└? ?` + regexp.QuoteMeta(p.String()) + `\s+` + regexp.QuoteMeta(want[p.String()]) + `\s`)
		if !line.MatchString(images) {
			t.Errorf("kiln images has no line for %s with %s:\n%s", p, want[p.String()], images)
		}
	}
	if !regexp.MustCompile(`(?m)^multi:latest\s+` + regexp.QuoteMeta(index) + `\s`).MatchString(images) {
		t.Errorf("kiln images lacks multi:latest %s:\n%s", index, images)
	}

	text := mustKiln(t, root, "inspect", "multi").stdout
	if !regexp.MustCompile(`(?m)^Digest:\s+` + regexp.QuoteMeta(index) + `$`).MatchString(text) {
		t.Errorf("kiln inspect multi does not give the index's digest %s:\n%s", index, text)
	}
	for _, s := range []string{"application/vnd.oci.image.index.v1+json", host.String(), foreign.String(), want[host.String()], want[foreign.String()]} {
		if !strings.Contains(text, s) {
			t.Errorf("kiln inspect multi lacks %q:\n%s", s, text)
		}
	}
	var in struct {
		Digest    string
		MediaType string
		Manifests []struct{ Platform, Digest string }
	}
	if err := json.Unmarshal([]byte(mustKiln(t, root, "inspect", "--format", "json", "multi").stdout), &in); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range in.Manifests {
		got[m.Platform] = m.Digest
	}
	if in.Digest != index || len(got) != 2 || got[host.String()] != want[host.String()] || got[foreign.String()] != want[foreign.String()] {
		t.Errorf("kiln inspect --format json multi: %+v; want index %s with %v", in, index, want)
	}

	var one struct{ Digest, Architecture string }
	if err := json.Unmarshal([]byte(mustKiln(t, root, "inspect", "--format", "json", "--platform", foreign.String(), "multi").stdout), &one); err != nil {
		t.Fatal(err)
	}
	if one.Digest != want[foreign.String()] || one.Architecture != foreign.Arch {
		t.Errorf("kiln inspect --platform %s multi: %+v, want %s", foreign, one, want[foreign.String()])
	}
	if r := kiln(t, root, nil, "inspect", "--platform", "linux/s390x", "multi"); r.code == 0 || !strings.Contains(r.stderr, "linux/s390x") {
		t.Errorf("inspect --platform of a platform the index lacks: exit %d, %q", r.code, r.stderr)
	}
}
