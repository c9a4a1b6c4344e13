package main

import (
	"regexp"
	"strings"
	"testing"
)

// Access log lines of the requests that read a blob, and of the uploads
// that mount one from another repository.
var (
	blobGetLine   = regexp.MustCompile(`"GET /v2/[^ "]*/blobs/sha256:[0-9a-f]{64} `)
	blobMountLine = regexp.MustCompile(`"POST /v2/([^ "]*)/blobs/uploads/\?[^ "]*mount=sha256(%3A|:)([0-9a-f]{64})[^ "]*`)
)

// TestRemoteCacheLazyBlobs (issue 17 item 4): an all-hit build from a
// registry cache into an empty root (its base pulled first), without an
// output, fetches no blob: the registry logs no blob GET; a push of the
// image to another repository of that registry mounts the cache's layers
// (POST …?mount=…&from=cache/…) and reads no blob; kiln run then fetches
// what it needs, and the image works.
func TestRemoteCacheLazyBlobs(t *testing.T) {
	s := newRemoteCacheSetup(t)
	cacheRef := "registry://" + s.reg.host + "/cache/lazy:main"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"kiln.yml": "from: " + s.base + `
steps:
  - run: echo one > /one
  - run: seq 1 100000 > /numbers
`})
	a, b := newRoot(t), newRoot(t)
	built := mustKiln(t, a, "build", dir, "-t", "app", "--cache-to", cacheRef, s.ca)
	mustKiln(t, b, "pull", s.base, s.ca)
	pushed := pushedLayers(t, a, "app") // base, run, run: as the cache has them
	// layerGets returns the log's GETs of the steps' layer blobs (the
	// cache's own config is a blob that every build reads).
	layerGets := func(log string) []string {
		var gets []string
		for _, g := range blobGetLine.FindAllString(log, -1) {
			for _, d := range pushed[1:] {
				if strings.Contains(g, d) {
					gets = append(gets, g)
				}
			}
		}
		return gets
	}

	before := len(s.reg.accessLog(t))
	r := mustKiln(t, b, "build", dir, "-t", "app", "--cache-from", cacheRef, s.ca)
	if n := ran(t, r); n != "0" {
		t.Errorf("the build from the remote cache ran %s nodes, want 0:\n%s", n, r.stderr)
	}
	if r.stdout != built.stdout {
		t.Errorf("the build from the remote cache made %q, want %q", r.stdout, built.stdout)
	}
	log := s.reg.accessLog(t)
	if gets := layerGets(log[before:]); len(gets) > 0 {
		t.Errorf("the all-hit build without an output read %d layer blobs, want none:\n%s", len(gets), strings.Join(gets, "\n"))
	}

	// A push to another repository of the registry mounts the layers.
	before = len(log)
	mustKiln(t, b, "push", "app", s.reg.host+"/other/app:1", s.ca)
	log = s.reg.accessLog(t)
	if gets := blobGetLine.FindAllString(log[before:], -1); len(gets) > 0 {
		t.Errorf("the push read %d blobs, want none:\n%s", len(gets), strings.Join(gets, "\n"))
	}
	mounted := map[string]bool{}
	for _, m := range blobMountLine.FindAllStringSubmatch(log[before:], -1) {
		if m[1] == "other/app" && (strings.Contains(m[0], "from=cache%2Flazy") || strings.Contains(m[0], "from=cache/lazy")) {
			mounted["sha256:"+m[3]] = true
		}
	}
	for _, d := range pushed[1:] {
		if !mounted[d] {
			t.Errorf("the push did not mount the cache's layer %s from cache/lazy; mounts: %v", d, mounted)
		}
	}

	// kiln run fetches the layers.
	if r := mustKiln(t, b, "run", s.ca, "app", "--", "sh", "-c", "cat /one; wc -l < /numbers"); r.stdout != "one\n100000\n" {
		t.Errorf("kiln run of the image from the remote cache: %q", r.stdout)
	}
	if gets := layerGets(s.reg.accessLog(t)[len(log):]); len(gets) != 2 {
		t.Errorf("kiln run read %d blobs, want the 2 layers of the cache:\n%s", len(gets), strings.Join(gets, "\n"))
	}
}
