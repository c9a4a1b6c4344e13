package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/store"
)

// root is a store and its cache in a temp dir.
type root struct {
	s *store.Store
	c *cache.Cache
}

func newRoot(t *testing.T) root {
	t.Helper()
	s, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.Open(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return root{s, c}
}

// record writes a layer holding one file /f with content, and a record
// of a key made from content.
func (r root) record(t *testing.T, content string) cache.Record {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	// As a step's: its tar, uncompressed (an export compresses it).
	l, err := r.s.StageLayer(t.Context(), func(w io.Writer) error { return layer.WriteDir(t.Context(), w, dir) })
	if err != nil {
		t.Fatal(err)
	}
	rec := cache.Record{Key: cache.ComputeKey(cache.KeyInput{Kind: "run", Args: []string{content}}), Step: "run: " + content}
	rec.Layer.Digest, _ = l.Digest()
	rec.Layer.Size, _ = l.Size()
	rec.Layer.MediaType, _ = l.MediaType()
	rec.DiffID, _ = l.DiffID()
	if err := r.c.Put(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	got, _, err := r.c.Get(t.Context(), rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// newRegistry starts go-containerregistry's in-memory registry and
// returns a target tag in it.
func newRegistry(t *testing.T, tag string) Target {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/team/cache:" + tag)
	if err != nil {
		t.Fatal(err)
	}
	return Registry(ref)
}

// warnings collects warnings.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) warn(s string) {
	w.mu.Lock()
	w.lines = append(w.lines, s)
	w.mu.Unlock()
}

func (w *warnings) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

func targets(t *testing.T) map[string]func(t *testing.T) Target {
	return map[string]func(t *testing.T) Target{
		"registry": func(t *testing.T) Target { return newRegistry(t, "main") },
		"layout":   func(t *testing.T) Target { return Layout(filepath.Join(t.TempDir(), "layout"), "main") },
	}
}

// TestExportFetch exports records from one root and fetches them into an
// empty one: a hit brings the record and its blob, a key the artifact
// lacks is a miss, and only the blobs of the keys asked for are fetched.
func TestExportFetch(t *testing.T) {
	for name, newTarget := range targets(t) {
		t.Run(name, func(t *testing.T) {
			tg := newTarget(t)
			a := newRoot(t)
			recs := []cache.Record{a.record(t, "one"), a.record(t, "two"), a.record(t, "three")}
			st, err := Export(t.Context(), tg, a.s, a.c, []cache.Key{recs[0].Key, recs[1].Key, recs[2].Key, cache.ComputeKey(cache.KeyInput{Kind: "absent"})}, ExportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != 3 || st.Total != 3 {
				t.Errorf("Export wrote %d records, main holds %d; want 3 and 3", st.Records, st.Total)
			}

			for _, preload := range []bool{false, true} {
				b := newRoot(t)
				var w warnings
				src := NewSource(b.s, b.c, w.warn, tg)
				if preload {
					src.Preload(t.Context()) // the Fetches use what it read
				}
				for _, tc := range []struct {
					key  cache.Key
					want bool
				}{
					{recs[0].Key, true},
					{recs[2].Key, true},
					{cache.ComputeKey(cache.KeyInput{Kind: "absent"}), false},
				} {
					got, err := src.Fetch(t.Context(), tc.key)
					if err != nil || got != tc.want {
						t.Errorf("Fetch(%s) = %v, %v; want %v, nil", tc.key, got, err, tc.want)
					}
				}
				for _, r := range recs[:1] {
					got, _, err := b.c.Get(t.Context(), r.Key)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(r, got); diff != "" {
						t.Errorf("fetched record (-want +got):\n%s", diff)
					}
					if err := b.c.Verify(t.Context(), r.Key); err != nil {
						t.Errorf("fetched layer does not verify: %v", err)
					}
				}
				if _, _, err := b.c.Get(t.Context(), recs[1].Key); err == nil {
					t.Errorf("key %s was never looked up, yet it is in the cache", recs[1].Key)
				}
				blobs := blobsOf(t, b.s)
				for _, r := range []cache.Record{recs[0], recs[2]} {
					if !blobs[r.Layer.Digest.Hex] {
						t.Errorf("blob %s of a hit is not in the store", r.Layer.Digest)
					}
				}
				if blobs[recs[1].Layer.Digest.Hex] {
					t.Errorf("blob %s of a key never looked up was fetched", recs[1].Layer.Digest)
				}
				if w.all() != "" {
					t.Errorf("warnings: %s", w.all())
				}
			}
		})
	}
}

// blobsOf lists the blobs in s, by hex digest.
func blobsOf(t *testing.T, s *store.Store) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Root(), "oci", "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// TestConcurrentExports has writers export different records to one tag
// at once, several rounds: afterwards a reader finds every record.
func TestConcurrentExports(t *testing.T) {
	tg := newRegistry(t, "shared")
	const writers, rounds = 4, 3
	var want []string
	roots := make([]root, writers)
	keys := make([][]cache.Key, writers)
	for i := range roots {
		roots[i] = newRoot(t)
		for j := 0; j < rounds; j++ {
			r := roots[i].record(t, fmt.Sprintf("writer %d round %d", i, j))
			keys[i] = append(keys[i], r.Key)
			want = append(want, r.Key.String())
		}
	}
	for j := 0; j < rounds; j++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range roots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := Export(context.Background(), tg, roots[i].s, roots[i].c, keys[i][:j+1], ExportOptions{}); err != nil {
					t.Errorf("writer %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	checkKeys(t, tg, want)
	// A last export merges every fragment into the main tag.
	last := newRoot(t)
	r := last.record(t, "last")
	st, err := Export(t.Context(), tg, last.s, last.c, []cache.Key{r.Key}, ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != len(want)+1 {
		t.Errorf("the main tag holds %d records after a last export, want %d", st.Total, len(want)+1)
	}
	raw, err := tg.config(t.Context(), tg.tag())
	if err != nil {
		t.Fatal(err)
	}
	main, _, err := parseConfig(raw)
	if err != nil || len(main.Records) != len(want)+1 {
		t.Errorf("main tag: %d records, %v; want %d", len(main.Records), err, len(want)+1)
	}
}

// TestBadRemoteData serves artifacts with bad parts: each is a warning
// and a miss, and the good records of the same artifact still hit.
func TestBadRemoteData(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes what is in the layout dir; it returns the key
		// that must miss.
		spoil func(t *testing.T, dir string, good, bad cache.Record) cache.Key
		warn  string
	}{
		{
			name: "corrupt layer",
			spoil: func(t *testing.T, dir string, good, bad cache.Record) cache.Key {
				p := filepath.Join(dir, "blobs", "sha256", bad.Layer.Digest.Hex)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0xff
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return bad.Key
			},
			warn: "put blob sha256:", // a bad digest, or a stream that does not decompress
		},
		{
			name: "missing blob",
			spoil: func(t *testing.T, dir string, good, bad cache.Record) cache.Key {
				if err := os.Remove(filepath.Join(dir, "blobs", "sha256", bad.Layer.Digest.Hex)); err != nil {
					t.Fatal(err)
				}
				return bad.Key
			},
			warn: "no such file",
		},
		{
			name: "unparsable record",
			spoil: func(t *testing.T, dir string, good, bad cache.Record) cache.Key {
				setRecordField(t, dir, bad.Key, "layer", "not a descriptor")
				return bad.Key
			},
			warn: "does not parse",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, tg, good, bad := exportGoodBad(t)
			miss := tc.spoil(t, dir, good, bad)
			b := newRoot(t)
			var w warnings
			src := NewSource(b.s, b.c, w.warn, tg)
			if ok, err := src.Fetch(t.Context(), miss); ok || err != nil {
				t.Errorf("Fetch of the spoilt key = %v, %v; want a miss", ok, err)
			}
			if !strings.Contains(w.all(), tc.warn) {
				t.Errorf("warnings %q do not mention %q", w.all(), tc.warn)
			}
			if _, _, err := b.c.Get(t.Context(), miss); err == nil {
				t.Error("the spoilt key is in the local cache")
			}
			if ok, err := src.Fetch(t.Context(), good.Key); !ok || err != nil {
				t.Errorf("Fetch of the good key = %v, %v; want a hit", ok, err)
			}
		})
	}
}

// setRecordField sets field of the record of key in the layout's
// artifacts to v.
func setRecordField(t *testing.T, dir string, key cache.Key, field string, v any) {
	t.Helper()
	rewriteConfig(t, dir, func(cfg map[string]any) {
		for _, r := range cfg["records"].([]any) {
			if m := r.(map[string]any); m["key"] == key.String() {
				m[field] = v
			}
		}
	})
}

// exportGoodBad exports two records, "good" and "bad", to a new OCI
// layout dir.
func exportGoodBad(t *testing.T) (dir string, tg Target, good, bad cache.Record) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "layout")
	tg = Layout(dir, "main")
	a := newRoot(t)
	good, bad = a.record(t, "good"), a.record(t, "bad")
	if _, err := Export(t.Context(), tg, a.s, a.c, []cache.Key{good.Key, bad.Key}, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir, tg, a.exported(t, good), a.exported(t, bad)
}

// exported returns rec as Export wrote it: its layer compressed (the
// blob that Export made, which the store remembers).
func (r root) exported(t *testing.T, rec cache.Record) cache.Record {
	t.Helper()
	l, err := r.s.Compress(t.Context(), r.s.BlobLayer(rec.Layer, rec.DiffID), store.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	d, err := partial.Descriptor(l)
	if err != nil {
		t.Fatal(err)
	}
	rec.Layer = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}
	return rec
}

// TestWrongDiffID: a record whose blob is right but whose diffID is not
// is a miss with a warning naming the diffID: the blob is decompressed as
// it is fetched (a step's layer is kept as its tar), which checks it.
func TestWrongDiffID(t *testing.T) {
	dir, tg, good, bad := exportGoodBad(t)
	setRecordField(t, dir, bad.Key, "diffID", good.DiffID.String())
	b := newRoot(t)
	var w warnings
	if ok, err := NewSource(b.s, b.c, w.warn, tg).Fetch(t.Context(), bad.Key); ok || err != nil {
		t.Fatalf("Fetch = %v, %v; want a miss", ok, err)
	}
	if got := w.all(); !strings.Contains(got, "diffID") {
		t.Errorf("warnings %q: want one naming the diffID", got)
	}
	if _, _, err := b.c.Get(t.Context(), bad.Key); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get after a bad fetch: %v; want ErrNotFound", err)
	}
}

// rewriteConfig edits the config of every artifact in the layout dir as
// JSON, and writes it back under its new digest (the manifests and index
// follow), as a hostile or broken writer could.
func rewriteConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	var index v1.IndexManifest
	readJSON(t, filepath.Join(dir, "index.json"), &index)
	for i, d := range index.Manifests {
		var m map[string]any
		readJSON(t, blobPath(dir, d.Digest), &m)
		cd := m["config"].(map[string]any)
		var cfg map[string]any
		readJSON(t, blobPath(dir, v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(cd["digest"].(string), "sha256:")}), &cfg)
		edit(cfg)
		h, n := writeBlob(t, dir, cfg)
		cd["digest"], cd["size"] = h.String(), n
		mh, mn := writeBlob(t, dir, m)
		index.Manifests[i].Digest, index.Manifests[i].Size = mh, mn
	}
	b, err := json.Marshal(index)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func blobPath(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func writeBlob(t *testing.T, dir string, v any) (v1.Hash, int64) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blobPath(dir, h), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return h, n
}

func TestParseConfig(t *testing.T) {
	key := strings.Repeat("ab", 32)
	digest := "sha256:" + strings.Repeat("cd", 32)
	good := fmt.Sprintf(`{"key":%q,"layer":{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":3},"diffID":%q}`, key, digest, digest)
	tests := []struct {
		name     string
		config   string
		records  int
		bad      int
		parseErr bool
	}{
		{"good", `{"version":1,"records":[` + good + `]}`, 1, 0, false},
		{"not JSON", `{"version":1,"records":[`, 0, 0, true},
		{"other version", `{"version":2,"records":[]}`, 0, 0, true},
		{"a record is a string", `{"version":1,"records":["x",` + good + `]}`, 1, 1, false},
		{"a record without a key", `{"version":1,"records":[{"layer":{"digest":` + fmt.Sprintf("%q", digest) + `,"size":3,"mediaType":"x"},"diffID":` + fmt.Sprintf("%q", digest) + `}]}`, 0, 1, false},
		{"a bad digest", `{"version":1,"records":[` + strings.Replace(good, digest, "sha256:12", 1) + `]}`, 0, 1, false},
		{"a mount without an id", `{"version":1,"records":[],"mounts":[{"layer":{"digest":` + fmt.Sprintf("%q", digest) + `,"size":3,"mediaType":"x"},"diffID":` + fmt.Sprintf("%q", digest) + `}]}`, 0, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, bad, err := parseConfig([]byte(tc.config))
			if (err != nil) != tc.parseErr {
				t.Fatalf("parseConfig error = %v, want error: %v", err, tc.parseErr)
			}
			if len(cfg.Records) != tc.records || len(bad) != tc.bad {
				t.Errorf("parseConfig: %d records, bad %q; want %d records, %d bad", len(cfg.Records), bad, tc.records, tc.bad)
			}
		})
	}
}

// TestMountsRoundTrip exports a cache mount with the records; a Source
// restores it on its first lookup, keeping a mount the root already has.
func TestMountsRoundTrip(t *testing.T) {
	tg := newRegistry(t, "mounts")
	a := newRoot(t)
	rec := a.record(t, "one")
	for id, content := range map[string]string{"go build": "compiled", "kept": "remote"} {
		d := filepath.Join(mountsDir(a.s), url.PathEscape(id))
		if err := os.MkdirAll(filepath.Join(d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "sub", "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Export(t.Context(), tg, a.s, a.c, []cache.Key{rec.Key}, ExportOptions{Mounts: true})
	if err != nil || st.Mounts != 2 {
		t.Fatalf("Export: %+v, %v; want 2 mounts", st, err)
	}

	b := newRoot(t)
	kept := filepath.Join(mountsDir(b.s), "kept")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	var w warnings
	if ok, err := NewSource(b.s, b.c, w.warn, tg).Fetch(t.Context(), rec.Key); !ok || err != nil {
		t.Fatalf("Fetch = %v, %v", ok, err)
	}
	d := filepath.Join(mountsDir(b.s), url.PathEscape("go build"))
	got, err := os.ReadFile(filepath.Join(d, "sub", "f"))
	if err != nil || string(got) != "compiled" {
		t.Errorf("restored mount holds %q, %v; want %q", got, err, "compiled")
	}
	if fi, err := os.Stat(d); err != nil || fi.Mode()&(os.ModePerm|os.ModeSticky) != 0o777|os.ModeSticky {
		t.Errorf("restored mount directory: %v, %v; want mode 1777", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(kept, "sub")); err == nil {
		t.Error("a mount the root had was overwritten")
	}
	if w.all() != "" {
		t.Errorf("warnings: %s", w.all())
	}
}

// TestUnreachable: a target that cannot be read is a warning, and every
// key a miss; the next target still serves.
func TestUnreachable(t *testing.T) {
	good := newRegistry(t, "main")
	a := newRoot(t)
	rec := a.record(t, "one")
	if _, err := Export(t.Context(), good, a.s, a.c, []cache.Key{rec.Key}, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ggcrregistry.New())
	srv.Close() // nothing listens there any more
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/gone/cache:main")
	if err != nil {
		t.Fatal(err)
	}
	b := newRoot(t)
	var w warnings
	src := NewSource(b.s, b.c, w.warn, Registry(ref), good)
	if ok, err := src.Fetch(t.Context(), rec.Key); !ok || err != nil {
		t.Errorf("Fetch = %v, %v; want a hit from the second target", ok, err)
	}
	if !strings.Contains(w.all(), "registry://"+ref.String()) || !strings.Contains(w.all(), "building without it") {
		t.Errorf("warnings %q do not name the unreachable target", w.all())
	}
}

// TestExportOverMissingBlob: an export to a target holding a record whose
// blob is gone drops that record, with a warning, and writes the rest.
func TestExportOverMissingBlob(t *testing.T) {
	dir, tg, good, bad := exportGoodBad(t)
	if err := os.Remove(blobPath(dir, bad.Layer.Digest)); err != nil {
		t.Fatal(err)
	}
	c := newRoot(t)
	rec := c.record(t, "third")
	var w warnings
	st, err := Export(t.Context(), tg, c.s, c.c, []cache.Key{rec.Key}, ExportOptions{Warn: w.warn})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 || !strings.Contains(w.all(), "dropping cache key "+bad.Key.String()) {
		t.Errorf("export over a missing blob: %d records, warnings %q; want 2 and the bad key dropped", st.Total, w.all())
	}
	cfg, err := load(t.Context(), tg, nil, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cfg.Records {
		got = append(got, r.Step)
	}
	sort.Strings(got)
	if diff := cmp.Diff([]string{good.Step, rec.Step}, got); diff != "" {
		t.Errorf("records after the export (-want +got):\n%s", diff)
	}
}

// TestReadsShareSetup fetches from a registry: the reads (tag list,
// artifact, blobs) set up their connection (GET /v2/, the ping) once,
// not once each.
func TestReadsShareSetup(t *testing.T) {
	var mu sync.Mutex
	pings := 0
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			mu.Lock()
			pings++
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/team/cache:main")
	if err != nil {
		t.Fatal(err)
	}
	a := newRoot(t)
	recs := []cache.Record{a.record(t, "one"), a.record(t, "two")}
	if _, err := Export(t.Context(), Registry(ref), a.s, a.c, []cache.Key{recs[0].Key, recs[1].Key}, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	pings = 0
	mu.Unlock()

	b := newRoot(t)
	var w warnings
	src := NewSource(b.s, b.c, w.warn, Registry(ref))
	for _, r := range recs {
		if ok, err := src.Fetch(t.Context(), r.Key); !ok || err != nil {
			t.Fatalf("Fetch(%s) = %v, %v; want a hit (warnings: %s)", r.Key, ok, err, w.all())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if pings != 1 {
		t.Errorf("the reads pinged the registry %d times, want 1", pings)
	}
}

// TestExportRetriesRefusedUpload: a registry that refuses a blob upload
// once as DIGEST_INVALID (as Distribution does when two writers commit
// the same blob at once) does not fail the export: the write is tried
// again, and the records arrive.
func TestExportRetriesRefusedUpload(t *testing.T) {
	var mu sync.Mutex
	refused := 0
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refuse := r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && refused == 0
		if refuse {
			refused++
		}
		mu.Unlock()
		if refuse {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}`)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/team/cache:main")
	if err != nil {
		t.Fatal(err)
	}
	a := newRoot(t)
	rec := a.record(t, "one")
	if _, err := Export(t.Context(), Registry(ref), a.s, a.c, []cache.Key{rec.Key}, ExportOptions{}); err != nil {
		t.Fatalf("export after one refused upload: %v", err)
	}
	if refused != 1 {
		t.Fatalf("the registry refused %d uploads, want 1 (the test did not exercise a refusal)", refused)
	}
	b := newRoot(t)
	var w warnings
	if ok, err := NewSource(b.s, b.c, w.warn, Registry(ref)).Fetch(t.Context(), rec.Key); !ok || err != nil {
		t.Fatalf("Fetch = %v, %v; want a hit (warnings: %s)", ok, err, w.all())
	}
}
