package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// importImage imports a one-file tree as name and returns the image.
func importImage(t *testing.T, s *Store, content, name string) v1.Image {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Import(ctx, writeTree(t, map[string]string{"f": content}), name, ImportOptions{Created: epoch}); err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// entryNames lists the names of the index's entries of digest d ("" for
// an untagged one).
func entryNames(t *testing.T, s *Store, d v1.Hash) []string {
	t.Helper()
	im, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range im.Manifests {
		if e.Digest == d {
			out = append(out, e.Annotations[refNameAnnotation])
		}
	}
	return out
}

// TestKeep: an untagged image is found by its digest (in full, as sha256:
// and 12 hex digits, and as 12 hex digits alone), listed with no name,
// kept by a collection that removes every unkept blob, named by Tag (which
// drops its untagged entry) and removed by Remove of its digest.
func TestKeep(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img := importImage(t, s, "kept", "kept")
	d, _ := img.Digest()
	if err := s.Remove(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Keep(ctx, img)
	if err != nil || got != d {
		t.Fatalf("Keep = %s, %v; want %s", got, err, d)
	}
	if _, err := s.Keep(ctx, img); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{""}, entryNames(t, s, d)); diff != "" {
		t.Errorf("entries after two Keeps (-want +got):\n%s", diff)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	im, err := s.readIndex()
	if err == nil {
		err = s.collect(ctx, im, time.Now().Add(time.Hour)) // every unkept blob goes
	}
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{d.String(), "sha256:" + d.Hex[:12], d.Hex[:12], d.Hex} {
		img, err := s.Image(ctx, ref)
		if err != nil {
			t.Errorf("Image(%s): %v", ref, err)
			continue
		}
		if _, err := img.ConfigFile(); err != nil {
			t.Errorf("Image(%s): %v", ref, err)
		}
		if n, err := s.Name(ctx, ref); err != nil || n != "" {
			t.Errorf("Name(%s) = %q, %v; want \"\" (by digest)", ref, n, err)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "" || list[0].Digest != d {
		t.Errorf("List = %+v, want the untagged image alone", list)
	}

	// Tag names it: the untagged entry goes; Keep then adds none.
	if _, err := s.Tag(ctx, img, "named"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Keep(ctx, img); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"docker.io/library/named:latest"}, entryNames(t, s, d)); diff != "" {
		t.Errorf("entries after Tag and Keep (-want +got):\n%s", diff)
	}
	if n, err := s.Name(ctx, "named"); err != nil || n != "named:latest" {
		t.Errorf("Name(named) = %q, %v", n, err)
	}

	// Remove by digest: refused for two names, else removes the image.
	if _, err := s.Tag(ctx, img, "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, d.Hex[:12]); err == nil || !strings.Contains(err.Error(), "named:latest, other:latest") {
		t.Errorf("Remove by digest of an image of two names: %v, want a refusal naming both", err)
	}
	if err := s.Remove(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "sha256:"+d.Hex[:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(ctx, d.String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Image after Remove by digest: %v, want ErrNotFound", err)
	}
	if err := s.Remove(ctx, d.String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove by digest: %v, want ErrNotFound", err)
	}
}

// TestLookupAmbiguous: a digest prefix that two images share is refused,
// naming both; a name made of hex digits names its image before any
// digest does.
func TestLookupAmbiguous(t *testing.T) {
	a := v1.Hash{Algorithm: "sha256", Hex: "abcdef012345" + strings.Repeat("0", 52)}
	b := v1.Hash{Algorithm: "sha256", Hex: "abcdef012345" + strings.Repeat("1", 52)}
	c := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("2", 64)}
	im := &v1.IndexManifest{Manifests: []v1.Descriptor{
		{Digest: a}, {Digest: b}, {Digest: b, Annotations: map[string]string{refNameAnnotation: "b:latest"}},
		{Digest: c, Annotations: map[string]string{refNameAnnotation: "abcdef012345:latest"}},
	}}
	tests := []struct {
		ref      string
		want     v1.Hash
		byDigest bool
		errText  string
	}{
		{ref: "sha256:abcdef012345", errText: "matches 2 images (" + a.String() + ", " + b.String() + ")"},
		{ref: "sha256:abcdef0123450", want: a, byDigest: true},
		{ref: "abcdef0123451", want: b, byDigest: true},
		{ref: "abcdef012345", want: c},
		{ref: "sha256:abcdef01234", errText: "invalid image digest"},
		{ref: "abcdef01234", errText: "image not found"},
	}
	for _, tc := range tests {
		d, byDigest, err := find(im, tc.ref)
		if tc.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("find(%s): %v, want an error containing %q", tc.ref, err, tc.errText)
			}
			continue
		}
		if err != nil || d.Digest != tc.want || byDigest != tc.byDigest {
			t.Errorf("find(%s) = %s, %v, %v; want %s, %v", tc.ref, d.Digest, byDigest, err, tc.want, tc.byDigest)
		}
	}
}

// TestExportArchiveNames: a docker archive's RepoTags are the NAME:TAG of
// the destination, else the names given (normalised, in their order,
// without repeats), else none; SourceNames reads them back.
func TestExportArchiveNames(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img := importImage(t, s, "x", "x")
	dir := t.TempDir()
	tests := []struct {
		dest  string
		names []string
		want  []string
	}{
		{"a.tar", []string{"zz", "127.0.0.1:5000/app:2", "aa:1", "zz:latest"}, []string{"zz:latest", "127.0.0.1:5000/app:2", "aa:1"}},
		{"b.tar:example.com/b:3", []string{"ignored"}, []string{"example.com/b:3"}},
		{"c.tar", nil, nil},
	}
	for _, tc := range tests {
		ref := "docker-archive:" + filepath.Join(dir, tc.dest)
		if err := Export(ctx, img, ref, tc.names...); err != nil {
			t.Fatal(err)
		}
		file, _, _ := strings.Cut(strings.TrimPrefix(ref, "docker-archive:"), ":")
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 {
			t.Fatalf("%s: %d images", tc.dest, len(m))
		}
		if diff := cmp.Diff(tc.want, m[0].RepoTags); diff != "" {
			t.Errorf("%s: RepoTags (-want +got):\n%s", tc.dest, diff)
		}
		got, err := SourceNames("docker-archive:" + file)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("SourceNames(%s) (-want +got):\n%s", file, diff)
		}
		back, err := s.Resolve(ctx, "docker-archive:"+file)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mustConfigName(t, back), mustConfigName(t, img); got != want {
			t.Errorf("%s holds config %s, want %s", tc.dest, got, want)
		}
	}
	if err := Export(ctx, img, "docker-archive:"+filepath.Join(dir, "d.tar"), "bad@sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("Export with a name with a digest succeeded")
	}
}

func mustConfigName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}
