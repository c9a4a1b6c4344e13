package main

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// refsManifest is a one-step build from busybox whose image holds /hi.
const refsManifest = "from: busybox\nsteps:\n  - run: echo hi > /hi\n"

// TestRefsUntaggedDigest: the digest an untagged build prints names the
// image in run, inspect, push and rmi, in full, as sha256: and 12 hex
// digits, and as 12 bare hex digits (as docker's short ids); kiln images
// lists it as <none>, a cache prune (which collects garbage) keeps it,
// and rmi by digest removes it.
func TestRefsUntaggedDigest(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	d := digestOf(t, mustKiln(t, root, "build", dir))
	hex := strings.TrimPrefix(d, "sha256:")
	for _, ref := range []string{d, "sha256:" + hex[:12], hex[:12]} {
		if r := kiln(t, root, nil, "run", ref, "--", "cat", "/hi"); r.code != 0 || r.stdout != "hi\n" {
			t.Errorf("kiln run %s -- cat /hi: exit %d, stdout %q, stderr %q", ref, r.code, r.stdout, r.stderr)
		}
	}
	if r := kiln(t, root, nil, "inspect", "sha256:"+hex[:12]); r.code != 0 || !strings.Contains(r.stdout, d) {
		t.Errorf("kiln inspect sha256:%s: exit %d, stdout %q, stderr %q", hex[:12], r.code, r.stdout, r.stderr)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if r := kiln(t, root, nil, "push", d, "oci-layout:"+layout+":v1"); r.code != 0 {
		t.Errorf("kiln push %s oci-layout: exit %d, stderr %q", d, r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "push", d); r.code == 0 || !strings.Contains(r.stderr, "DEST") {
		t.Errorf("kiln push DIGEST without DEST: exit %d, stderr %q: want a failure asking for DEST", r.code, r.stderr)
	}
	images := mustKiln(t, root, "images").stdout
	if !slices.ContainsFunc(strings.Split(images, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "<none>") && strings.Contains(l, d)
	}) {
		t.Errorf("kiln images lists no <none> line with %s:\n%s", d, images)
	}
	if got := mustKiln(t, root, "images", "-q", "--filter", "dangling=true").stdout; got != d+"\n" {
		t.Errorf("kiln images -q --filter dangling=true: %q, want %q", got, d+"\n")
	}
	if got := mustKiln(t, root, "images", "-q", "--filter", "dangling=false").stdout; got != "busybox:latest\n" {
		t.Errorf("kiln images -q --filter dangling=false: %q, want busybox:latest", got)
	}
	mustKiln(t, root, "cache", "prune")
	if r := kiln(t, root, nil, "run", d, "--", "cat", "/hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("after kiln cache prune, kiln run %s: exit %d, stdout %q, stderr %q", d, r.code, r.stdout, r.stderr)
	}
	if r := mustKiln(t, root, "rmi", hex[:12]); r.stdout != "removed "+hex[:12]+"\n" {
		t.Errorf("kiln rmi %s: %q", hex[:12], r.stdout)
	}
	if r := kiln(t, root, nil, "run", d, "--", "true"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("kiln run of a removed digest: exit %d, stderr %q: want not found", r.code, r.stderr)
	}
}

// TestRefsBuildQuiet: build -q prints the digest alone on stdout and
// nothing on stderr.
func TestRefsBuildQuiet(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	for _, flag := range []string{"-q", "--quiet"} {
		r := mustKiln(t, root, "build", flag, "--no-cache", dir)
		digestOf(t, r)
		if r.stderr != "" {
			t.Errorf("kiln build %s: stderr %q, want none", flag, r.stderr)
		}
	}
}

// TestRefsFlagConflicts: flags that cannot all be honoured are refused
// before anything runs: the only output is kiln's message.
func TestRefsFlagConflicts(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	out := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"push without tag", []string{"--push"}, "--push needs at least one -t"},
		{"tag with digest", []string{"-t", "app@sha256:" + strings.Repeat("0", 64)}, "a name with a digest"},
		{"quiet and progress", []string{"-q", "--progress", "plain"}, "-q"},
		{"two outputs to one place", []string{"--output", "type=oci,dest=" + out + "/x", "--output", "type=docker,dest=" + out + "/x/"}, "both write"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kiln(t, root, nil, append(append([]string{"build"}, tc.args...), "--progress", "plain", dir)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q: want a failure saying %q", r.code, r.stderr, tc.want)
			}
			if strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("something ran before the flags were refused:\nstdout %q\nstderr %q", r.stdout, r.stderr)
			}
		})
	}
}

// archiveTags reads the RepoTags of each image of a docker archive.
func archiveTags(t *testing.T, file string) [][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no manifest.json", file)
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatalf("%s: manifest.json: %v", file, err)
		}
		var out [][]string
		for _, e := range m {
			out = append(out, e.RepoTags)
		}
		return out
	}
}

// skopeoInspect runs skopeo inspect with args and fails the test when it
// fails.
func skopeoInspect(t *testing.T, args ...string) []byte {
	t.Helper()
	skopeo := requireTool(t, "skopeo")
	out, err := exec.CommandContext(t.Context(), skopeo, append([]string{"inspect"}, args...)...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect %s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
	}
	return out
}

// TestRefsDockerArchiveTags: every -t of a build reaches the RepoTags of
// its docker archive, and kiln push to docker-archive:F names the image
// after its source (or the NAME:TAG after F); skopeo finds the image by
// each name.
func TestRefsDockerArchiveTags(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	out := t.TempDir()
	built := filepath.Join(out, "built.tar")
	d := digestOf(t, mustKiln(t, root, "build", "-t", "app:1", "-t", "127.0.0.1:5000/app:2", "--output", "type=docker,dest="+built, dir))
	pushed := filepath.Join(out, "pushed.tar")
	mustKiln(t, root, "push", "busybox", "docker-archive:"+pushed)
	renamed := filepath.Join(out, "renamed.tar")
	mustKiln(t, root, "push", "app:1", "docker-archive:"+renamed+":other/name:3")
	untagged := filepath.Join(out, "untagged.tar")
	mustKiln(t, root, "push", d, "docker-archive:"+untagged)

	tests := []struct {
		file string
		want [][]string
		refs []string // skopeo finds the image by these names
	}{
		{built, [][]string{{"app:1", "127.0.0.1:5000/app:2"}}, []string{"app:1", "127.0.0.1:5000/app:2"}},
		{pushed, [][]string{{"busybox:latest"}}, []string{"busybox:latest"}},
		{renamed, [][]string{{"other/name:3"}}, []string{"other/name:3"}},
		{untagged, [][]string{nil}, nil},
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, archiveTags(t, tc.file)); diff != "" {
				t.Errorf("RepoTags (-want +got):\n%s", diff)
			}
			for _, ref := range tc.refs {
				var info struct{ Os string }
				b := skopeoInspect(t, "docker-archive:"+tc.file+":"+ref)
				if err := json.Unmarshal(b, &info); err != nil || info.Os != "linux" {
					t.Errorf("skopeo inspect docker-archive:%s:%s printed %s", tc.file, ref, b)
				}
			}
		})
	}
}

// TestRefsPullTransports: kiln pull takes an oci-layout: and a
// docker-archive: reference as kiln run does: -t names the image, a
// docker archive's own names are kept, and an untagged pull is kept by
// the digest it prints. A layout keeps the image's digest; a docker
// archive holds no manifest, so its image's digest is the one kiln run
// and kiln inspect of the archive give too.
func TestRefsPullTransports(t *testing.T) {
	enginetest.RequireRoot(t)
	src := newRoot(t)
	digest := importBusybox(t, src)
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "layout")
	archive := filepath.Join(tmp, "bb.tar")
	mustKiln(t, src, "push", "busybox", "oci-layout:"+layout+":v1")
	mustKiln(t, src, "push", "busybox", "docker-archive:"+archive)

	root := newRoot(t)
	var archived struct{ Digest string }
	if err := json.Unmarshal([]byte(mustKiln(t, root, "inspect", "--format", "json", "docker-archive:"+archive).stdout), &archived); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args   []string
		name   string // the image's local name after the pull
		digest string
	}{
		{[]string{"oci-layout:" + layout + ":v1", "-t", "from-layout"}, "from-layout", digest},
		{[]string{"docker-archive:" + archive}, "busybox", archived.Digest},
		{[]string{"docker-archive:" + archive + ":busybox:latest", "-t", "named"}, "named", archived.Digest},
		{[]string{"oci-layout:" + layout}, digest, digest},
	}
	for _, tc := range tests {
		r := kiln(t, root, nil, append([]string{"pull"}, tc.args...)...)
		if r.code != 0 || r.stdout != tc.digest+"\n" {
			t.Errorf("kiln pull %s: exit %d, stdout %q, stderr %q; want %s", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.digest)
			continue
		}
		if r := kiln(t, root, nil, "run", tc.name, "--", "echo", "ok"); r.code != 0 || r.stdout != "ok\n" {
			t.Errorf("after kiln pull %s, kiln run %s: exit %d, stdout %q, stderr %q", strings.Join(tc.args, " "), tc.name, r.code, r.stdout, r.stderr)
		}
	}
	if r := kiln(t, root, nil, "pull", "oci-layout:"+layout+":nosuch"); r.code == 0 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("kiln pull of a missing layout tag: exit %d, stderr %q", r.code, r.stderr)
	}
}

// checkLayoutFiles checks that the layout dir's files are 0644 and that
// no entry of its index.json that is a plain image has an artifactType;
// it returns the entries' ref names.
func checkLayoutFiles(t *testing.T, dir string) []string {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode() != 0o644 {
			t.Errorf("%s has mode %v, want -rw-r--r--", p, info.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			ArtifactType string            `json:"artifactType"`
			Digest       string            `json:"digest"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	var refs []string
	for _, m := range index.Manifests {
		refs = append(refs, m.Annotations["org.opencontainers.image.ref.name"])
		blob, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(m.Digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		var mf struct {
			ArtifactType string `json:"artifactType"`
		}
		if err := json.Unmarshal(blob, &mf); err != nil {
			t.Fatal(err)
		}
		if m.ArtifactType != mf.ArtifactType {
			t.Errorf("index.json: %s has artifactType %q, its manifest %q", m.Digest, m.ArtifactType, mf.ArtifactType)
		}
	}
	return refs
}

// umociRefs lists the refs of a layout with umoci ls.
func umociRefs(t *testing.T, dir string) []string {
	t.Helper()
	umoci := requireTool(t, "umoci")
	out, err := exec.CommandContext(t.Context(), umoci, "ls", "--layout", dir).Output()
	if err != nil {
		t.Fatalf("umoci ls --layout %s: %v\n%s", dir, err, stderrOf(err))
	}
	return strings.Fields(string(out))
}

// TestRefsLayoutFiles: an image pushed or built into an OCI layout has
// files of mode 0644 and no artifactType on its index entry, and umoci
// and skopeo read it.
func TestRefsLayoutFiles(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	out := t.TempDir()
	built := filepath.Join(out, "built")
	mustKiln(t, root, "build", "-t", "app:1", "--output", "type=oci,dest="+built, dir)
	pushed := filepath.Join(out, "pushed")
	mustKiln(t, root, "push", "busybox", "oci-layout:"+pushed+":bb")
	mustKiln(t, root, "push", "app:1", "oci-layout:"+pushed+":app")
	for _, tc := range []struct {
		dir  string
		refs []string
	}{
		{built, []string{"1"}},
		{pushed, []string{"bb", "app"}},
	} {
		if diff := cmp.Diff(tc.refs, checkLayoutFiles(t, tc.dir)); diff != "" {
			t.Errorf("%s: refs (-want +got):\n%s", tc.dir, diff)
		}
		if diff := cmp.Diff(tc.refs, umociRefs(t, tc.dir)); diff != "" {
			t.Errorf("umoci ls %s (-want +got):\n%s", tc.dir, diff)
		}
		skopeoInspect(t, "oci:"+tc.dir+":"+tc.refs[0])
	}
}

// TestRefsCacheExportLayout: kiln cache export DIR leaves one ref, the
// artifact's, which skopeo reads with and without the ref and umoci
// lists, with files of mode 0644; a second export merges into it and
// still leaves one ref; kiln cache import reads it back.
func TestRefsCacheExportLayout(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": refsManifest})
	mustKiln(t, root, "build", dir)
	layout := filepath.Join(t.TempDir(), "cache")
	mustKiln(t, root, "cache", "export", layout)
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte(refsManifest+"  - run: echo two > /two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKiln(t, root, "build", dir)
	if r := mustKiln(t, root, "cache", "export", layout); !strings.HasSuffix(r.stdout, "(2 records there)\n") {
		t.Errorf("second cache export: %q", r.stdout)
	}
	if diff := cmp.Diff([]string{"cache"}, checkLayoutFiles(t, layout)); diff != "" {
		t.Errorf("refs of the export (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cache"}, umociRefs(t, layout)); diff != "" {
		t.Errorf("umoci ls (-want +got):\n%s", diff)
	}
	for _, ref := range []string{"oci:" + layout, "oci:" + layout + ":cache"} {
		var m struct{ ArtifactType string }
		if b := skopeoInspect(t, "--raw", ref); json.Unmarshal(b, &m) != nil || m.ArtifactType != "application/vnd.kiln.cache.v1" {
			t.Errorf("skopeo inspect --raw %s printed %s", ref, b)
		}
	}
	other := newRoot(t)
	if r := mustKiln(t, other, "cache", "import", layout); !strings.HasPrefix(r.stdout, "imported 2 records") {
		t.Errorf("cache import: %q", r.stdout)
	}
}
