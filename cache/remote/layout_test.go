package remote

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// TestExportLayoutOneRef: an export to an OCI layout leaves one ref, the
// main tag's, merging into it (and removing) a fragment an older kiln
// left there; concurrent exports to one layout lose no record; every file
// is 0644.
func TestExportLayoutOneRef(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	tg := Layout(dir, "main")
	old := newRoot(t)
	oldRec := old.record(t, "from an older kiln")
	_, l, err := old.c.Get(t.Context(), oldRec.Key)
	if err != nil {
		t.Fatal(err)
	}
	frag, err := newArtifact(Config{Records: []cache.Record{oldRec}}, func(v1.Hash) func() (io.ReadCloser, error) { return l.Compressed })
	if err != nil {
		t.Fatal(err)
	}
	if err := writeArtifact(t.Context(), tg, fragmentPrefix("main")+"000000000000", frag); err != nil {
		t.Fatal(err)
	}

	const writers = 4
	want := []string{oldRec.Key.String()}
	var wg sync.WaitGroup
	for i := range writers {
		r := newRoot(t)
		rec := r.record(t, "writer "+string(rune('a'+i)))
		want = append(want, rec.Key.String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := Export(context.Background(), tg, r.s, r.c, []cache.Key{rec.Key}, ExportOptions{})
			if err != nil || st.Fragment != "" {
				t.Errorf("Export: %+v, %v; want no fragment", st, err)
			}
		}()
	}
	wg.Wait()

	tags, err := tg.tags(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"main"}, tags); diff != "" {
		t.Errorf("refs of the layout (-want +got):\n%s", diff)
	}
	if w := checkKeys(t, tg, want); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if info, err := d.Info(); err != nil || info.Mode() != 0o644 {
			t.Errorf("%s: mode %v, want 0644", p, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkKeys checks that tg holds the records of the keys want (in any
// order) and returns the warnings of reading it.
func checkKeys(t *testing.T, tg Target, want []string) []string {
	t.Helper()
	var w warnings
	cfg, err := load(t.Context(), tg, nil, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.Records {
		got = append(got, r.Key.String())
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records of %s (-want +got):\n%s", tg, diff)
	}
	return w.lines
}
