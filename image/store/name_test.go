package store

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestNamesAsDocker: busybox, busybox:latest, docker.io/library/busybox
// and docker.io/library/busybox:latest are one name, as for docker: Tag
// under any of them replaces the image of the others, each finds it, the
// index keeps the full name, List and Name print the familiar one, and an
// entry an older kiln wrote as given ("busybox:latest") is the same name.
func TestNamesAsDocker(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	first := importImage(t, s, "one", "busybox")
	second := importImage(t, s, "two", "docker.io/library/busybox:latest")
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if names := entryNames(t, s, d1); len(names) != 0 {
		t.Errorf("the first image still has entries %q after its name was given to another", names)
	}
	if diff := cmp.Diff([]string{"docker.io/library/busybox:latest"}, entryNames(t, s, d2)); diff != "" {
		t.Errorf("index entries (-want +got):\n%s", diff)
	}
	for _, n := range []string{"busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox", "docker.io/library/busybox:latest", "index.docker.io/library/busybox", "busybox@" + d2.String()} {
		img, err := s.Image(ctx, n)
		if err != nil {
			t.Errorf("Image(%q): %v", n, err)
			continue
		}
		if d, _ := img.Digest(); d != d2 {
			t.Errorf("Image(%q) = %s, want %s", n, d, d2)
		}
	}
	if n, err := s.Name(ctx, "docker.io/library/busybox"); err != nil || n != "busybox:latest" {
		t.Errorf("Name = %q, %v; want busybox:latest", n, err)
	}
	if list, err := s.List(ctx); err != nil || len(list) != 1 || list[0].Name != "busybox:latest" {
		t.Errorf("List = %+v, %v; want busybox:latest alone", list, err)
	}

	// An entry as an older kiln wrote it.
	err := s.updateIndex(ctx, func(im *v1.IndexManifest) error {
		im.Manifests[0].Annotations[refNameAnnotation] = "busybox:latest"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(ctx, "docker.io/library/busybox:latest"); err != nil {
		t.Errorf("an old entry busybox:latest is not found by its full name: %v", err)
	}
	if _, err := s.Tag(ctx, first, "docker.io/library/busybox"); err != nil {
		t.Fatal(err)
	}
	if names := entryNames(t, s, d2); len(names) != 0 {
		t.Errorf("Tag by the full name left the old entry: %q", names)
	}
	if err := s.Remove(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Image(ctx, "docker.io/library/busybox"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Image after Remove: %v, want ErrNotFound", err)
	}
}
