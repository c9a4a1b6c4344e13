package store

import (
	"context"
	"errors"
	"testing"

	"github.com/kiln-build/kiln/image/platform"
)

// TestTagPlatform imports an image for the host and one for another
// platform under one name: the name holds an index of both, Image gives
// the host's, ImageFor each platform's, a third platform is an error
// naming the name and the platform, and List shows the platforms.
func TestTagPlatform(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	host := platform.Host()
	other, _ := platform.Parse("linux/s390x")
	missing, _ := platform.Parse("linux/riscv64")
	hostDir := writeTree(t, map[string]string{"arch": "host"})
	otherDir := writeTree(t, map[string]string{"arch": "other"})
	hd, err := s.Import(ctx, hostDir, "bb", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	od, err := s.Import(ctx, otherDir, "bb", ImportOptions{Platform: other})
	if err != nil {
		t.Fatal(err)
	}
	idx, ok, err := s.Index(ctx, "bb")
	if err != nil || !ok {
		t.Fatalf("Index(bb) = %v, %v; want the index the second import made", ok, err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("the index has %d images, want 2", len(im.Manifests))
	}
	if d, _ := idx.Digest(); d != od {
		t.Errorf("the import printed %s, the name holds %s", od, d)
	}
	for _, tc := range []struct {
		p    platform.Platform
		want string
	}{{host, "host"}, {other, "other"}} {
		img, err := s.ImageFor(ctx, "bb", tc.p)
		if err != nil {
			t.Fatalf("ImageFor(%s): %v", tc.p, err)
		}
		cf, _ := img.ConfigFile()
		if got := platform.FromOCI(cf.OS, cf.Architecture, cf.Variant); got != tc.p {
			t.Errorf("ImageFor(%s) has a config for %s", tc.p, got)
		}
		if tc.p == host {
			if d, _ := img.Digest(); d != hd {
				t.Errorf("ImageFor(host) = %s, want the first import's %s", d, hd)
			}
		}
	}
	img, err := s.Image(ctx, "bb")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d != hd {
		t.Errorf("Image(bb) = %s, want the host's %s", d, hd)
	}
	if _, err := s.ImageFor(ctx, "bb", missing); !errors.Is(err, ErrNoPlatform) {
		t.Errorf("ImageFor(%s) = %v, want ErrNoPlatform", missing, err)
	}
	// Again for the host: its image is replaced, the other's kept.
	if _, err := s.Import(ctx, otherDir, "bb", ImportOptions{Platform: host}); err != nil {
		t.Fatal(err)
	}
	all, err := s.Platforms(ctx, "bb")
	if err != nil || len(all) != 2 {
		t.Fatalf("Platforms(bb) = %v, %v; want 2", all, err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(list[0].Platforms) != 2 {
		t.Errorf("List = %+v, want bb with 2 platforms", list)
	}
}
