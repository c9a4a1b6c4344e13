package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/image/store"
)

// flipByte changes the middle byte of the file p.
func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// busyboxLayer returns the diffID and the digest of the one layer of
// busybox:latest in root.
func busyboxLayer(t *testing.T, root string) (diffID, digest v1.Hash) {
	t.Helper()
	st, err := store.Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Image(t.Context(), "busybox")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("busybox layers: %d, %v", len(ls), err)
	}
	if diffID, err = ls[0].DiffID(); err != nil {
		t.Fatal(err)
	}
	if digest, err = ls[0].Digest(); err != nil {
		t.Fatal(err)
	}
	return diffID, digest
}

// TestEscapeTamperedLayerDir changes an unpacked layer directory of the
// store (a file added, one rewritten): cache verify reports it, a build
// and kiln run never use it (they warn, naming it, and make it again from
// the layer's blob), and verify --repair removes it.
func TestEscapeTamperedLayerDir(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo hi > /hello\n"})
	mustKiln(t, root, "build", "-t", "app", dir)
	if r := mustKiln(t, root, "run", "app", "--", "cat", "/hello"); r.stdout != "hi\n" {
		t.Fatalf("kiln run app cat /hello: %q", r.stdout)
	}
	diffID, _ := busyboxLayer(t, root)
	ldir := filepath.Join(root, "layers", diffID.Hex)
	if err := os.WriteFile(filepath.Join(ldir, "evil"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ldir, "etc", "passwd"), []byte("root::0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := kiln(t, root, nil, "cache", "verify")
	if r.code == 0 || !strings.Contains(r.stdout, diffID.Hex[:12]) || strings.Contains(r.stdout, " 0 bad") {
		t.Errorf("cache verify of a tampered layer directory: exit %d, stdout %q: want a failure naming %s", r.code, r.stdout, diffID.Hex[:12])
	}
	// Chosen behaviour: after a crash of kiln (or a reboot), a build or
	// run that needs the directory never runs on it: it says so, naming
	// it, and makes it again from the layer's blob (whose digest is
	// checked as it is read). Between clean runs a layer directory is
	// checked once (when made), not on every use: kiln cache verify finds
	// a change made by hand then (see the store's
	// TestLayerDirCheckedOncePerEpoch).
	killRun(t, root, "crash1")
	r = kiln(t, root, nil, "run", "app", "--", "cat", "/evil")
	if r.code == 0 || strings.Contains(r.stdout, "tampered") || !strings.Contains(r.stderr, diffID.Hex) || !strings.Contains(r.stderr, "was changed since it was made") {
		t.Errorf("kiln run on a tampered layer: exit %d, stdout %q, stderr %q: want no /evil and a warning naming the layer", r.code, r.stdout, r.stderr)
	}
	if r := mustKiln(t, root, "run", "app", "--", "cat", "/etc/passwd"); strings.Contains(r.stdout, "root::0") {
		t.Errorf("kiln run after the warning shows the tampered /etc/passwd: %q", r.stdout)
	}
	if err := os.WriteFile(filepath.Join(ldir, "evil"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir2 := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: test ! -e /evil\n"})
	killRun(t, root, "crash2")
	r = kiln(t, root, nil, "build", "--progress", "plain", dir2)
	if r.code != 0 || !strings.Contains(r.stderr, diffID.Hex) {
		t.Errorf("build on a tampered layer: exit %d, stderr %q: want the step to find no /evil, and a warning naming the layer", r.code, r.stderr)
	}
	if err := os.WriteFile(filepath.Join(ldir, "evil"), []byte("tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := mustKiln(t, root, "cache", "verify", "--repair"); !strings.Contains(r.stdout, diffID.Hex[:12]) {
		t.Errorf("verify --repair: %q", r.stdout)
	}
	if r := mustKiln(t, root, "cache", "verify"); !strings.Contains(r.stdout, " 0 bad") {
		t.Errorf("verify after --repair: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "run", "app", "--", "cat", "/evil"); r.code == 0 || strings.Contains(r.stdout, "tampered") {
		t.Errorf("after repair /evil is still there: exit %d, %q", r.code, r.stdout)
	}
	mustKiln(t, root, "build", dir2)
}

// TestEscapeCorruptBlob flips a byte of a layer blob of the store: cache
// verify reports it, and every way out of the store (push to an archive,
// a layout or a registry, a build's outputs) fails naming the blob and
// leaves no output behind.
func TestEscapeCorruptBlob(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo hi > /hello\n"})
	mustKiln(t, root, "build", "-t", "app", dir)
	_, digest := busyboxLayer(t, root)
	flipByte(t, filepath.Join(root, "oci", "blobs", "sha256", digest.Hex))
	want := "blob " + digest.String() + " in the store is corrupt"

	r := kiln(t, root, nil, "cache", "verify")
	if r.code == 0 || !strings.Contains(r.stdout, digest.Hex[:12]) {
		t.Errorf("cache verify of a corrupt blob: exit %d, stdout %q: want a failure naming %s", r.code, r.stdout, digest.Hex[:12])
	}

	out := t.TempDir()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, c := range []struct {
		name string
		args []string
		path string // what must not exist afterwards
	}{
		{"docker-archive", []string{"push", "app", "docker-archive:" + filepath.Join(out, "a.tar")}, filepath.Join(out, "a.tar")},
		{"oci-layout", []string{"push", "app", "oci-layout:" + filepath.Join(out, "layout")}, filepath.Join(out, "layout")},
		{"registry", []string{"push", "app", host + "/test/app:1"}, ""},
		{"output oci", []string{"build", dir, "--output", "type=oci,dest=" + filepath.Join(out, "o")}, filepath.Join(out, "o")},
		{"output oci tar", []string{"build", dir, "--output", "type=oci,dest=" + filepath.Join(out, "o.tar")}, filepath.Join(out, "o.tar")},
		{"output docker", []string{"build", dir, "--output", "type=docker,dest=" + filepath.Join(out, "d.tar")}, filepath.Join(out, "d.tar")},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kiln(t, root, nil, c.args...)
			if r.code == 0 || !strings.Contains(r.stderr, want) {
				t.Errorf("kiln %s: exit %d, stderr %q: want a failure with %q", strings.Join(c.args, " "), r.code, r.stderr, want)
			}
			if c.path != "" {
				if _, err := os.Lstat(c.path); err == nil {
					t.Errorf("kiln %s left %s behind", strings.Join(c.args, " "), c.path)
				}
			}
		})
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("outputs left behind: %v", ents)
	}
}

// TestEscapeDamagedRecord damages a cache record in several ways: each
// time the build warns, naming the key, runs the step again and writes a
// good record.
func TestEscapeDamagedRecord(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo one > /one\n"})
	mustKiln(t, root, "build", dir)
	c := openCache(t, root)
	keys, err := c.Keys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v, %v", keys, err)
	}
	k := keys[0]
	p := filepath.Join(root, "cache", "records", k.String()[:2], k.String()+".json")
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(good, &rec); err != nil {
		t.Fatal(err)
	}
	with := func(f func(map[string]any)) string {
		m := map[string]any{}
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, d := range []struct{ name, data string }{
		{"truncated", string(good[:len(good)/2])},
		{"empty", ""},
		{"wrong fields", `{"key":7,"layer":"x"}`},
		{"no media type", with(func(m map[string]any) { delete(m["layer"].(map[string]any), "mediaType") })},
		{"missing blob", with(func(m map[string]any) {
			m["layer"].(map[string]any)["digest"] = "sha256:" + strings.Repeat("ab", 32)
		})},
	} {
		t.Run(d.name, func(t *testing.T) {
			if err := os.WriteFile(p, []byte(d.data), 0o600); err != nil {
				t.Fatal(err)
			}
			r := kiln(t, root, nil, "build", dir)
			if r.code != 0 {
				t.Fatalf("build with a %s record: exit %d\n%s", d.name, r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "1 node ran") || !strings.Contains(r.stdout+r.stderr, "warning") || !strings.Contains(r.stdout+r.stderr, k.String()[:12]) {
				t.Errorf("build with a %s record: want the step run again with a warning naming %s:\nstdout %s\nstderr %s", d.name, k.String()[:12], r.stdout, r.stderr)
			}
			if _, _, err := openCache(t, root).Get(t.Context(), k); err != nil {
				t.Errorf("the record was not replaced by a good one: %v", err)
			}
		})
	}
}

// TestEscapeOCILayoutInput alters an oci-layout's manifest, config or
// layer: kiln run of the layout and a build FROM it fail naming what does
// not match its digest.
func TestEscapeOCILayoutInput(t *testing.T) {
	root := buildRoot(t)
	good := filepath.Join(t.TempDir(), "good")
	mustKiln(t, root, "push", "busybox", "oci-layout:"+good)

	blob := func(dir string, h v1.Hash) string { return filepath.Join(dir, "blobs", h.Algorithm, h.Hex) }
	var idx v1.IndexManifest
	b, err := os.ReadFile(filepath.Join(good, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v", err)
	}
	md := idx.Manifests[0].Digest
	mb, err := os.ReadFile(blob(good, md))
	if err != nil {
		t.Fatal(err)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(mb)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		alter func(dir string)
		want  string
	}{
		{"manifest", func(dir string) {
			// Still a valid manifest, naming the same config and layers.
			if err := os.WriteFile(blob(dir, md), append(mb, ' ', '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "manifest " + md.String()},
		{"config", func(dir string) {
			p := blob(dir, m.Config.Digest)
			cb, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(strings.Replace(string(cb), `"/bin/sh"`, `"/bin/true"`, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "config " + m.Config.Digest.String()},
		{"layer", func(dir string) { flipByte(t, blob(dir, m.Layers[0].Digest)) }, m.Layers[0].Digest.String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			if err := os.CopyFS(dir, os.DirFS(good)); err != nil {
				t.Fatal(err)
			}
			c.alter(dir)
			r := kiln(t, newRoot(t), nil, "run", "oci-layout:"+dir, "--", "true")
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("kiln run of a layout with a changed %s: exit %d, stderr %q: want a failure naming %q", c.name, r.code, r.stderr, c.want)
			}
			ctx := writeContext(t, map[string]string{"kiln.yml": "from: oci-layout:" + dir + "\nsteps:\n  - run: echo hi > /hi\n"})
			r = kiln(t, newRoot(t), nil, "build", ctx)
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("build FROM a layout with a changed %s: exit %d, stderr %q: want a failure naming %q", c.name, r.code, r.stderr, c.want)
			}
		})
	}
}

// TestPowerLossStepLayer plays a power loss that kept the inodes of a
// step's layer directory and lost its data: kiln leaves the data of a
// layer directory to the kernel's write-back (no sync at commit), so its
// first use in a later boot hashes the whole directory. The test zeroes
// the file the step wrote (same size) and gives the directory's record
// the metadata digest of the damaged tree (what such a crash leaves:
// inodes as recorded, content not), in another boot. A step's layer is
// kept only as its directory: the next build must not take it from the
// cache (it warns, naming the cache record, and runs the step again),
// and kiln run, before that build, must say the layer is lost and what to
// do instead of running on it.
func TestPowerLossStepLayer(t *testing.T) {
	for _, first := range []string{"build", "run"} {
		t.Run(first+" first", func(t *testing.T) {
			root := buildRoot(t)
			dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo hello-from-the-step > /hello\n"})
			mustKiln(t, root, "build", "-t", "app", dir)
			diffID := loseStepData(t, root, "app", "hello")

			if first == "run" {
				r := kiln(t, root, nil, "run", "app", "--", "cat", "/hello")
				if r.code == 0 || !strings.Contains(r.stderr, diffID.Hex) || !strings.Contains(r.stderr, "build the image again") {
					t.Errorf("kiln run on the lost layer: exit %d, stdout %q, stderr %q: want a failure naming the layer and saying to build again", r.code, r.stdout, r.stderr)
				}
			}
			r := kiln(t, root, nil, "build", "--progress", "plain", "-t", "app", dir)
			if r.code != 0 || strings.Count(r.stderr, "running the step again") != 1 || !strings.Contains(r.stderr, "1 node ran") {
				t.Errorf("build after the power loss: exit %d, stderr %q: want the step to run again, with one warning", r.code, r.stderr)
			}
			if r := mustKiln(t, root, "run", "app", "--", "cat", "/hello"); r.stdout != "hello-from-the-step\n" {
				t.Errorf("/hello of the image built after the power loss: %q, want the step's output", r.stdout)
			}
		})
	}
}

// loseStepData zeroes the file name of the last layer of image (a
// step's, kept as its directory) in root, as a power loss that kept its
// inode and lost its data leaves it: the directory's record gets the
// metadata digest of the damaged tree, and names a boot that is not this
// one, as does the root's epoch. It returns the layer's diffID.
func loseStepData(t *testing.T, root, image, name string) v1.Hash {
	t.Helper()
	diffID := lastLayer(t, root, image)
	ldir := filepath.Join(root, "layers", diffID.Hex)
	p := filepath.Join(ldir, name)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("the step's layer directory: %v", err)
	}
	if err := os.WriteFile(p, make([]byte, fi.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	recPath := filepath.Join(root, "layertrees", diffID.Hex)
	b, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	meta, err := layer.DigestTree(t.Context(), ldir, false)
	if err != nil {
		t.Fatal(err)
	}
	const lastBoot = "00000000-0000-0000-0000-000000000000"
	rec["meta"] = meta.Meta.String()
	rec["unsynced"] = lastBoot
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "layerchecks.epoch"), []byte(lastBoot+" 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return diffID
}
