package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	remotecache "github.com/kiln-build/kiln/cache/remote"
	"github.com/kiln-build/kiln/engine/enginetest"
)

// remoteCacheSetup is a docker-registry with auth, logged in to, holding
// busybox as a base.
type remoteCacheSetup struct {
	reg  *dockerRegistry
	ca   string // the --ca-file flag
	base string // the base image's reference in the registry
}

func newRemoteCacheSetup(t *testing.T) *remoteCacheSetup {
	t.Helper()
	enginetest.RequireRoot(t)
	root := newRoot(t)
	importBusybox(t, root)
	reg, ca := loggedInRegistry(t, root)
	s := &remoteCacheSetup{reg: reg, ca: ca, base: reg.host + "/base/busybox:1"}
	mustKiln(t, root, "push", "busybox", s.base, s.ca)
	return s
}

// appDir writes a build context: a manifest from the registry's busybox
// whose copy step reads app.txt, holding content.
func (s *remoteCacheSetup) appDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	m := "from: " + s.base + `
steps:
  - run: echo one > /one
  - copy: {src: ./app.txt, dst: /app.txt}
  - run: cat /one /app.txt > /both
tests:
  - name: both
    run: grep one /both
`
	writeFiles(t, dir, map[string]string{"kiln.yml": m, "app.txt": content})
	return dir
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var nodesRan = regexp.MustCompile(`(\d+) nodes? ran`)

// ran returns how many nodes a build's summary says ran.
func ran(t *testing.T, r result) string {
	t.Helper()
	m := nodesRan.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no summary in the build's stderr:\n%s", r.stderr)
	}
	return m[1]
}

// pushedLayers returns the digests of the layers of root's image as kiln
// push writes them (compressed: the blobs a cache export sends).
func pushedLayers(t *testing.T, root, image string) []string {
	t.Helper()
	m, err := kilnImage(t, root, image, filepath.Join(t.TempDir(), "pushed")).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, l := range m.Layers {
		ds = append(ds, l.Digest.String())
	}
	return ds
}

// TestRemoteCacheRegistry: root A builds and writes its cache to a
// registry with auth; root B, empty, builds the same manifest from that
// cache without running a step (only the test runs), gets the same image, and downloads only
// the layers that image has; a changed file makes B run only the steps
// it affects.
func TestRemoteCacheRegistry(t *testing.T) {
	s := newRemoteCacheSetup(t)
	cacheRef := "registry://" + s.reg.host + "/cache/app:main"
	a, b := newRoot(t), newRoot(t)
	v1, v2 := s.appDir(t, "v1\n"), s.appDir(t, "v2\n")

	built := mustKiln(t, a, "build", v1, "-t", "app", "--cache-to", cacheRef+",mode=max", s.ca)
	if !strings.Contains(built.stderr, "exported 3 cache records") {
		t.Errorf("the build did not say that it exported its 3 layer records:\n%s", built.stderr)
	}
	// A second build of other content adds records (and layers) that B
	// must not fetch.
	mustKiln(t, a, "build", v2, "--cache-to", cacheRef+",mode=max", s.ca)

	r := mustKiln(t, b, "build", v1, "-t", "app", "--cache-from", cacheRef, s.ca)
	// Only the test runs: a test's pass is not a layer, and a new runner
	// runs the tests again.
	if n := ran(t, r); n != "1" || strings.Contains(r.stderr, "] done: ") {
		t.Errorf("the build on an empty root ran %s nodes, want only the test (every step from the remote cache):\n%s", n, r.stderr)
	}
	if r.stdout != built.stdout {
		t.Errorf("the build from the remote cache made %q, want %q", r.stdout, built.stdout)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("warnings:\n%s", r.stderr)
	}
	// What B downloaded: the compressed blobs in its store (it
	// compresses nothing without an export).
	got := gzipBlobs(t, b)
	want := pushedLayers(t, a, "app")
	sort.Strings(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("compressed blobs in B's store against the image's layers as pushed (-image +store):\n%s", diff)
	}
	if r := mustKiln(t, b, "run", "app", "--", "cat", "/both"); r.stdout != "one\nv1\n" {
		t.Errorf("/both of the image from the remote cache: %q", r.stdout)
	}

	// A changed file: the copy and the step after it run, the first
	// step comes from the cache (and the test, on a new filesystem, runs).
	writeFiles(t, v1, map[string]string{"app.txt": "v3\n"})
	r = mustKiln(t, b, "build", v1, "-t", "app", "--cache-from", cacheRef, s.ca)
	if n := ran(t, r); n != "3" {
		t.Errorf("after changing app.txt the build ran %s nodes, want 3 (copy, run, test):\n%s", n, r.stderr)
	}
	if r := mustKiln(t, b, "run", "app", "--", "cat", "/both"); r.stdout != "one\nv3\n" {
		t.Errorf("/both after the change: %q", r.stdout)
	}
}

// TestRemoteCacheConcurrentWriters: four builds of different manifests,
// on four roots, write to one cache ref at once; afterwards the ref holds
// every record of all four.
func TestRemoteCacheConcurrentWriters(t *testing.T) {
	s := newRemoteCacheSetup(t)
	cacheRef := "registry://" + s.reg.host + "/cache/shared:ci"
	var wg sync.WaitGroup
	var steps []string
	for i := 0; i < 4; i++ {
		dir := t.TempDir()
		m := "from: " + s.base + "\nsteps:\n"
		for j := 0; j < 3; j++ {
			step := "run: echo " + strings.Repeat("x", i+1) + " " + string(rune('a'+j)) + " > /f" + string(rune('a'+j))
			m += "  - " + step + "\n"
			steps = append(steps, step)
		}
		writeFiles(t, dir, map[string]string{"kiln.yml": m})
		root := newRoot(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "--root", root, "build", "--progress", "plain", dir, "--cache-to", cacheRef, s.ca)
			cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("build %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	fresh := newRoot(t)
	if r := mustKiln(t, fresh, "cache", "import", cacheRef, s.ca); r.stdout != "imported 12 records and 0 cache mounts from "+cacheRef+"\n" {
		t.Errorf("cache import: %q", r.stdout)
	}
	ls := mustKiln(t, fresh, "cache", "ls").stdout
	var missing []string
	for _, st := range steps {
		if !strings.Contains(ls, st) {
			missing = append(missing, st)
		}
	}
	if len(missing) > 0 {
		t.Errorf("records missing after 4 concurrent writers: %q\ncache ls:\n%s", missing, ls)
	}
}

// TestRemoteCacheFlags: malformed --cache-to and --cache-from values are
// refused before anything runs, saying what is expected.
func TestRemoteCacheFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--cache-to", "127.0.0.1:5000/c:t"}, `--cache-to "127.0.0.1:5000/c:t": want registry://REGISTRY/REPO[:TAG][,mode=min|max][,mounts=true]`},
		{[]string{"--cache-to", "registry://127.0.0.1:5000/c:t,mode=all"}, `option "mode=all"`},
		{[]string{"--cache-to", "registry://127.0.0.1:5000/c:t,mounts=yes"}, `option "mounts=yes"`},
		{[]string{"--cache-from", "registry://127.0.0.1:5000/c:t,mode=max"}, "--cache-from takes no options"},
		{[]string{"--cache-from", "registry://"}, "want registry://"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := kiln(t, t.TempDir(), nil, append([]string{"build", t.TempDir()}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

// TestRemoteCacheBadData spoils what the registry holds for one step in
// three ways: each time the build from the remote cache warns, runs that
// step instead, and makes the right image.
func TestRemoteCacheBadData(t *testing.T) {
	s := newRemoteCacheSetup(t)
	// The step that runs again makes the same layer, dated by the epoch:
	// the image is the same as the one the cache was written with.
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	blobFile := func(digest string) string {
		hex := strings.TrimPrefix(digest, "sha256:")
		return filepath.Join(filepath.Dir(s.reg.log), "data", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	}
	tests := []struct {
		name  string
		spoil func(t *testing.T, repo, layer string)
		warn  string
	}{
		{"corrupt layer", func(t *testing.T, repo, layer string) {
			b, err := os.ReadFile(blobFile(layer))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(blobFile(layer), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "fetching the layer of cache key"},
		{"missing blob", func(t *testing.T, repo, layer string) {
			if err := os.RemoveAll(filepath.Dir(blobFile(layer))); err != nil {
				t.Fatal(err)
			}
		}, "fetching the layer of cache key"},
		{"unparsable record", func(t *testing.T, repo, layer string) {
			s.editRecords(t, repo, func(r map[string]any) {
				if r["layer"].(map[string]any)["digest"] == layer {
					r["layer"] = "garbage"
				}
			})
		}, "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := "cache/" + strings.ReplaceAll(tc.name, " ", "-")
			cacheRef := "registry://" + s.reg.host + "/" + repo + ":main"
			dir := s.appDir(t, tc.name+"\n")
			a, b := newRoot(t), newRoot(t)
			built := mustKiln(t, a, "build", dir, "-t", "app", "--cache-to", cacheRef, s.ca)
			copyLayer := pushedLayers(t, a, "app")[2] // base, run, copy, run: as the cache has it
			tc.spoil(t, repo, copyLayer)

			// fromCache builds dir on root from the spoilt cache. A corrupt
			// layer is a hit (its blob is fetched only when read, and the
			// registry has its digest): the build that reads it fails,
			// naming it, and drops it; the next build runs the step.
			fromCache := func(root string, args ...string) result {
				args = append([]string{"build", dir, "--cache-from", cacheRef, s.ca}, args...)
				if tc.name == "corrupt layer" {
					r := kiln(t, root, nil, args...)
					if r.code == 0 || !strings.Contains(r.stderr, "fetching layer "+copyLayer) {
						t.Errorf("the build that reads the corrupt layer: exit %d, stderr:\n%s\nwant a failure naming the layer %s", r.code, r.stderr, copyLayer)
					}
				}
				return mustKiln(t, root, args...)
			}
			r := fromCache(b, "-t", "app")
			if !strings.Contains(r.stderr, "kiln: warning: ") || !strings.Contains(r.stderr, tc.warn) {
				t.Errorf("no warning mentioning %q:\n%s", tc.warn, r.stderr)
			}
			// The copy runs, and the test; the last step's key does not
			// depend on the copy's layer, so it still hits.
			if n := ran(t, r); n != "2" || !strings.Contains(r.stderr, "done: copy:") {
				t.Errorf("ran %s nodes, want 2 (the copy again, the test):\n%s", n, r.stderr)
			}
			if r.stdout != built.stdout {
				t.Errorf("the build made %q, want %q", r.stdout, built.stdout)
			}
			if r := mustKiln(t, b, "run", "app", "--", "cat", "/both"); r.stdout != "one\n"+tc.name+"\n" {
				t.Errorf("/both: %q", r.stdout)
			}
			// Writing to the spoilt ref works and, but for a blob corrupt in
			// the registry's storage (which has the digest, so it is not
			// uploaded again), mends it: a third root then runs only the test.
			mustKiln(t, b, "build", dir, "--cache-to", cacheRef, s.ca)
			r = fromCache(newRoot(t))
			if n := ran(t, r); n != "1" && tc.name != "corrupt layer" {
				t.Errorf("from the mended cache, ran %s nodes, want 1 (the test):\n%s", n, r.stderr)
			}
		})
	}
}

// editRecords rewrites every cache artifact of repo (the main tag and the
// fragments), passing each record to edit, as a broken or hostile writer
// could.
func (s *remoteCacheSetup) editRecords(t *testing.T, repo string, edit func(map[string]any)) {
	t.Helper()
	opts := []remote.Option{
		remote.WithAuth(&authn.Basic{Username: s.reg.user, Password: s.reg.password}),
		remote.WithTransport(s.reg.client.Transport),
	}
	r, err := name.NewRepository(s.reg.host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		img, err := remote.Image(r.Tag(tag), opts...)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		var m map[string]any
		for _, x := range []struct {
			get func() ([]byte, error)
			v   *map[string]any
		}{{img.RawConfigFile, &cfg}, {img.RawManifest, &m}} {
			b, err := x.get()
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, x.v); err != nil {
				t.Fatal(err)
			}
		}
		for _, rec := range cfg["records"].([]any) {
			edit(rec.(map[string]any))
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := static.NewLayer(raw, remotecache.ConfigMediaType)
		if err := remote.WriteLayer(r, l, opts...); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		m["config"].(map[string]any)["digest"] = d.String()
		m["config"].(map[string]any)["size"] = len(raw)
		rawManifest, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(r.Tag(tag), rawBytes(rawManifest), opts...); err != nil {
			t.Fatal(err)
		}
	}
}

// rawBytes is a manifest to put as it is.
type rawBytes []byte

func (b rawBytes) RawManifest() ([]byte, error)        { return b, nil }
func (b rawBytes) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// readDir lists dir, which may not exist.
func readDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return ents
}

// TestCacheExportImportDir: kiln cache export DIR --mounts writes the
// records and a cache mount's content to an OCI layout; kiln cache import
// DIR on an empty root brings both back: the build then runs nothing,
// and a step that reads the cache mount sees what the first root left.
func TestCacheExportImportDir(t *testing.T) {
	enginetest.RequireRoot(t)
	a, b := newRoot(t), newRoot(t)
	if da, db := importBusybox(t, a), importBusybox(t, b); da != db {
		t.Fatalf("busybox imported as %s and %s", da, db)
	}
	df := `FROM busybox
RUN --mount=type=cache,target=/cache,id=downloads sh -c 'test -f /cache/dl || head -c 16 /dev/urandom | od -An -tx1 > /cache/dl; cp /cache/dl /state'
RUN echo two > /two
`
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": df})
	built := mustKiln(t, a, "build", "-f", filepath.Join(dir, "Dockerfile"), dir, "-t", "app")
	state := mustKiln(t, a, "run", "app", "--", "cat", "/state").stdout
	if len(state) < 16 {
		t.Fatalf("/state: %q", state)
	}
	layout := filepath.Join(t.TempDir(), "exported")
	if r := mustKiln(t, a, "cache", "export", layout, "--mounts"); r.stdout != "exported 2 records and 1 cache mounts to oci-layout:"+layout+":cache (2 records there)\n" {
		t.Errorf("cache export: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(layout, "oci-layout")); err != nil {
		t.Errorf("the export is not an OCI layout: %v", err)
	}
	if r := mustKiln(t, b, "cache", "import", layout); r.stdout != "imported 2 records and 1 cache mounts from oci-layout:"+layout+":cache\n" {
		t.Errorf("cache import: %q", r.stdout)
	}
	before := len(readDir(t, filepath.Join(b, "layers")))
	r := mustKiln(t, b, "build", "-f", filepath.Join(dir, "Dockerfile"), dir, "-t", "app")
	if n := ran(t, r); n != "0" || r.stdout != built.stdout {
		t.Errorf("after import the build ran %s nodes and made %q; want 0 and %q", n, r.stdout, built.stdout)
	}
	// Nothing ran, so no layer had to be unpacked.
	if after := len(readDir(t, filepath.Join(b, "layers"))); after != before {
		t.Errorf("a build that ran nothing unpacked %d layers", after-before)
	}
	// A new step reading the cache mount sees the first root's content.
	df2 := df + "RUN --mount=type=cache,target=/cache,id=downloads cp /cache/dl /seen\n"
	writeFiles(t, dir, map[string]string{"Dockerfile": df2})
	mustKiln(t, b, "build", "-f", filepath.Join(dir, "Dockerfile"), dir, "-t", "app2")
	if seen := mustKiln(t, b, "run", "app2", "--", "cat", "/seen").stdout; seen != state {
		t.Errorf("the imported cache mount holds %q, want %q", seen, state)
	}
}

// TestRemoteCacheModes: mode=min writes the records of the image's steps
// only; mode=max also those of a stage the image copies from.
func TestRemoteCacheModes(t *testing.T) {
	s := newRemoteCacheSetup(t)
	dir := t.TempDir()
	m := "stages:\n  builder:\n    from: " + s.base + "\n    steps:\n      - run: echo built > /b\n" +
		"  final:\n    from: " + s.base + "\n    steps:\n      - copy: {from: builder, src: /b, dst: /b}\n      - run: cat /b > /c\n"
	writeFiles(t, dir, map[string]string{"kiln.yml": m})
	root := newRoot(t)
	for _, tc := range []struct {
		mode string
		want string
	}{
		{"min", "2"},
		{"max", "3"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ref := "registry://" + s.reg.host + "/cache/modes:" + tc.mode
			r := mustKiln(t, root, "build", dir, "--cache-to", ref+",mode="+tc.mode, s.ca)
			if !strings.Contains(r.stderr, "exported "+tc.want+" cache records") {
				t.Errorf("mode=%s: want %s records exported:\n%s", tc.mode, tc.want, r.stderr)
			}
			if r := mustKiln(t, newRoot(t), "cache", "import", ref, s.ca); !strings.HasPrefix(r.stdout, "imported "+tc.want+" records") {
				t.Errorf("mode=%s: import: %q", tc.mode, r.stdout)
			}
		})
	}
}
