package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The differential test builds every Dockerfile under testdata/diff/<case>/
// with kiln and with Debian's buildah, from the same busybox base, and
// compares the two images' flattened file trees and configs.
//
// A case directory holds a Dockerfile (with ARG BASE, FROM ${BASE}) and
// its context. Optionally:
//   - Dockerfile.parent: built first, by both, and used as the case's base
//     (for ONBUILD); its configs are compared too;
//   - Dockerfile.buildah: what buildah builds instead of the Dockerfile,
//     for syntax buildah 1.28 does not know (heredocs came in buildah
//     1.33). It must describe the same image.
//
// Buildah always runs with --network none and --isolation oci --runtime
// runc, with its storage, registries.conf and containers.conf (whose
// network_config_dir moves under the test's directory) all under
// t.TempDir(): buildah's default network would rewrite the host's
// firewall. See ../shared/bench/README.md.

// diffKnown are the differences between kiln and buildah 1.28 that are
// deliberate, by case: where buildah departs from Docker (BuildKit, the
// builder of `docker build` since Docker 23), kiln follows BuildKit. Each
// fix turns buildah's result into what BuildKit gives, and says why.
var diffKnown = map[string]func(tree map[string]diffEntry, cfg *diffConfig){
	// ADD --chown of an archive: BuildKit gives the unpacked files the
	// --chown owner (solver/llbsolver/file/unpack.go: TarOptions.ChownOpts);
	// buildah 1.28 keeps the owners in the tar.
	// The tar's "./" entry does not apply to the destination: BuildKit
	// makes it root's (unpack.go: copy.MkdirAll) and moby/go-archive
	// v0.2.0 archive.go:875 skips a "." entry when the destination exists;
	// buildah gives it the entry's owner.
	"add": func(tree map[string]diffEntry, _ *diffConfig) {
		for p, e := range tree {
			if strings.HasPrefix(p, "/chowned/") {
				e.UID, e.GID = 1, 1
				tree[p] = e
			}
		}
		if e, ok := tree["/plain"]; ok {
			e.UID, e.GID = 0, 0
			tree["/plain"] = e
		}
	},
	// COPY --chmod=0700 b.sh /modes/: BuildKit makes the missing
	// destination directory with --chmod's permission bits
	// (tonistiigi/fsutil copy/copy.go:85-89, since fsutil#228; see
	// moby/buildkit#5943); buildah makes it 0755.
	"chown": func(tree map[string]diffEntry, _ *diffConfig) {
		if e, ok := tree["/modes"]; ok {
			e.Mode = "0700"
			tree["/modes"] = e
		}
	},
	// `ARG A=from-arg` after `ENV A=10`: in BuildKit the ARG wins in
	// the RUNs after it (dockerfile2llb/convert.go, dispatchArg:
	// d.state.AddEnv; TestBuildKitDiff/arg-env-precedence); buildah 1.28
	// keeps the ENV's value (in RUNs and in LABEL l1=$A).
	"argenv": func(tree map[string]diffEntry, cfg *diffConfig) {
		cfg.Labels["l1"] = "from-arg"
		for p, old := range map[string]string{"/args.txt": "a=10 ", "/env.txt": "A=10\n"} {
			e := tree[p]
			e.Data = strings.Replace(e.Data, old, strings.Replace(old, "10", "from-arg", 1), 1)
			tree[p] = e
		}
	},
	// EXPOSE 8000-8002: BuildKit expands a range into one port each
	// (nat.ParsePortSpecs); buildah keeps "8000-8002/tcp" as one key,
	// which no runtime reads as a range.
	"config": func(_ map[string]diffEntry, cfg *diffConfig) {
		var ports []string
		for _, p := range cfg.ExposedPorts {
			if p == "8000-8002/tcp" {
				ports = append(ports, "8000/tcp", "8001/tcp", "8002/tcp")
				continue
			}
			ports = append(ports, p)
		}
		slices.Sort(ports)
		cfg.ExposedPorts = ports
	},
	// CMD and ENTRYPOINT in shell form run in the SHELL (the Dockerfile
	// reference, SHELL: "affects the shell form of RUN, CMD and
	// ENTRYPOINT"); buildah 1.28 uses /bin/sh -c for them whatever SHELL
	// says.
	"shell": func(_ map[string]diffEntry, cfg *diffConfig) {
		for _, l := range []*[]string{&cfg.Cmd, &cfg.Entrypoint} {
			if len(*l) > 2 && (*l)[0] == "/bin/sh" && (*l)[1] == "-c" {
				*l = append(slices.Clone(cfg.Shell), (*l)[2:]...)
			}
		}
	},
}

// diffEntry is one file of a flattened image.
type diffEntry struct {
	Type byte
	Mode string
	UID  int
	GID  int
	Data string // sha256 and size of a regular file's content
	Link string // a symlink's target
	// HardLinks names every path of a hard-linked file's group, sorted
	// (the same whichever path the image's tar gives first).
	HardLinks string
	Xattrs    string // "name=value" pairs, sorted
}

// diffConfig is the part of an image config that the test compares.
type diffConfig struct {
	Env          []string
	Cmd          []string
	Entrypoint   []string
	WorkingDir   string
	User         string
	ExposedPorts []string
	Labels       map[string]string
	Volumes      []string
	StopSignal   string
	Healthcheck  *diffHealth
	Shell        []string
	OnBuild      []string
	Author       string
}

// diffHealth is an image's healthcheck, with StartInterval, which
// go-containerregistry's v1.HealthConfig does not have.
type diffHealth struct {
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// buildah runs buildah with the test's storage and configuration.
type buildah struct {
	bin  string
	work string
}

func newBuildah(t *testing.T) *buildah {
	t.Helper()
	bin, err := exec.LookPath("buildah")
	if err != nil {
		t.Skip("skipping: buildah is not installed (apt-get install -y buildah)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("skipping: runc is not installed (apt-get install -y runc), and buildah runs with --runtime runc")
	}
	work := t.TempDir()
	b := &buildah{bin: bin, work: work}
	netDir := filepath.Join(work, "networks")
	if err := os.MkdirAll(netDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The system containers.conf, with the network config dir moved here:
	// without it buildah writes /etc/containers/networks even with
	// --network none.
	sys, err := os.ReadFile("/etc/containers/containers.conf")
	if errors.Is(err, fs.ErrNotExist) {
		sys, err = os.ReadFile("/usr/share/containers/containers.conf")
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var conf strings.Builder
	set := false
	for _, l := range strings.Split(string(sys), "\n") {
		conf.WriteString(l + "\n")
		if strings.TrimSpace(l) == "[network]" {
			fmt.Fprintf(&conf, "network_config_dir = %q\n", netDir)
			set = true
		}
	}
	if !set {
		fmt.Fprintf(&conf, "[network]\nnetwork_config_dir = %q\n", netDir)
	}
	if err := os.WriteFile(filepath.Join(work, "containers.conf"), []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	regs := "unqualified-search-registries = []\nshort-name-mode = \"permissive\"\n"
	if err := os.WriteFile(filepath.Join(work, "registries.conf"), []byte(regs), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// run runs buildah with args after its global options.
func (b *buildah) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	full := append([]string{
		"--root", filepath.Join(b.work, "root"), "--runroot", filepath.Join(b.work, "runroot"),
		"--storage-driver", "overlay", "--registries-conf", filepath.Join(b.work, "registries.conf"),
	}, args...)
	cmd := exec.CommandContext(ctx, b.bin, full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(b.work, "containers.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// build builds dockerfile in dir as tag and returns the tag.
func (b *buildah) build(t *testing.T, dockerfile, dir, base, tag string) {
	t.Helper()
	b.run(t, "build", "--pull=false", "--quiet", "--format", "docker",
		"--isolation", "oci", "--runtime", "runc", "--network", "none",
		"--build-arg", "BASE="+base, "-t", tag, "-f", dockerfile, dir)
}

func TestBuildahDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the differential test builds images with kiln and buildah")
	}
	root := buildRoot(t)
	bh := newBuildah(t)
	cases, dirs := caseDirs(t, "diff")
	// buildah names an oci: image after its path, which must be lowercase.
	baseDir, err := os.MkdirTemp("", "kiln-diff-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(baseDir) })
	base := filepath.Join(baseDir, "base")
	mustKiln(t, root, "push", "busybox", "oci-layout:"+base+":latest")
	out := t.TempDir()
	start := time.Now()
	for _, d := range dirs {
		name := d.Name()
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(cases, name)
			kBase, bBase := "busybox", "oci:"+base+":latest"
			if _, err := os.Stat(filepath.Join(dir, "Dockerfile.parent")); err == nil {
				tag := "diff-" + name + "-parent"
				kilnLong(t, root, "build", "--frontend", "dockerfile", "--network", "none", "-f", filepath.Join(dir, "Dockerfile.parent"),
					"--build-arg", "BASE="+kBase, "-t", tag, dir)
				bh.build(t, filepath.Join(dir, "Dockerfile.parent"), dir, bBase, tag)
				kImg := kilnImage(t, root, tag, filepath.Join(out, name+"-kiln-parent"))
				bImg := buildahImage(t, bh, tag, filepath.Join(out, name+"-buildah-parent"))
				compareImages(t, name+" (parent)", kImg, bImg)
				kBase, bBase = tag, "localhost/"+tag
			}
			tag := "diff-" + name
			kilnLong(t, root, "build", "--frontend", "dockerfile", "--network", "none", "-f", filepath.Join(dir, "Dockerfile"),
				"--build-arg", "BASE="+kBase, "-t", tag, dir)
			df := filepath.Join(dir, "Dockerfile")
			if _, err := os.Stat(df + ".buildah"); err == nil {
				df += ".buildah"
			}
			bh.build(t, df, dir, bBase, tag)
			kImg := kilnImage(t, root, tag, filepath.Join(out, name+"-kiln"))
			bImg := buildahImage(t, bh, tag, filepath.Join(out, name+"-buildah"))
			compareImages(t, name, kImg, bImg)
		})
	}
	t.Logf("%d cases in %s", len(dirs), time.Since(start).Round(time.Millisecond))
}

// caseDirs returns the absolute path of testdata/sub and its entries.
func caseDirs(t *testing.T, sub string) (string, []os.DirEntry) {
	t.Helper()
	cases, err := filepath.Abs(filepath.Join("testdata", sub))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(cases)
	if err != nil {
		t.Fatal(err)
	}
	return cases, dirs
}

// kilnImage exports kiln's image tag as an OCI layout at dir and reads it.
func kilnImage(t *testing.T, root, tag, dir string) v1.Image {
	t.Helper()
	mustKiln(t, root, "push", tag, "oci-layout:"+dir+":latest")
	return layoutImage(t, dir)
}

// buildahImage exports buildah's image tag as an OCI layout at dir and
// reads it.
func buildahImage(t *testing.T, bh *buildah, tag, dir string) v1.Image {
	t.Helper()
	// A docker archive keeps the docker-format config (Healthcheck,
	// Shell, OnBuild), which buildah drops when it converts to OCI.
	file := dir + ".tar"
	bh.run(t, "push", "--quiet", tag, "docker-archive:"+file+":"+tag+":latest")
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s holds %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// compareImages reports every difference between kiln's and buildah's
// image that diffKnown does not explain.
func compareImages(t *testing.T, name string, kImg, bImg v1.Image) {
	t.Helper()
	kTree, bTree := flatten(t, kImg), flatten(t, bImg)
	kCfg, bCfg := configOf(t, kImg), configOf(t, bImg)
	if fix := diffKnown[name]; fix != nil {
		fix(bTree, &bCfg)
	}
	// What buildah's RUN leaves behind: the empty /etc/hostname it
	// mounts over and the /run it makes for its mounts. kiln removes the
	// mountpoints it made (as BuildKit does).
	for p, e := range map[string]diffEntry{
		"/etc/hostname": {Type: tar.TypeReg, Mode: "0755", Data: ""},
		"/run":          {Type: tar.TypeDir, Mode: "0755"},
	} {
		if _, ok := kTree[p]; !ok && bTree[p] == e {
			delete(bTree, p)
		}
	}
	if d := cmp.Diff(bTree, kTree); d != "" {
		t.Errorf("%s: the file trees differ (-buildah +kiln):\n%s", name, d)
	}
	// buildah labels its images with its version.
	delete(bCfg.Labels, "io.buildah.version")
	if len(bCfg.Labels) == 0 {
		bCfg.Labels = nil
	}
	if d := cmp.Diff(bCfg, kCfg, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s: the configs differ (-buildah +kiln):\n%s", name, d)
	}
}

// flatten lists the files of img's flattened root filesystem.
func flatten(t *testing.T, img v1.Image) map[string]diffEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]diffEntry{}
	links := map[string]string{} // a hard link → the path it names
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			groupHardLinks(out, links)
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := path.Clean("/" + h.Name)
		if p == "/" {
			continue
		}
		e := diffEntry{Type: h.Typeflag, Mode: fmt.Sprintf("%04o", h.Mode&0o7777), UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		if e.Type == '\x00' { // the old tar's regular file
			e.Type = tar.TypeReg
		}
		if e.Type == tar.TypeLink {
			links[p] = path.Clean("/" + h.Linkname)
			e.Link = ""
		}
		var xattrs []string
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xattrs = append(xattrs, name+"="+v)
			}
		}
		slices.Sort(xattrs)
		e.Xattrs = strings.Join(xattrs, " ")
		if e.Type == tar.TypeReg {
			hs := sha256.New()
			var small bytes.Buffer
			n, err := io.Copy(io.MultiWriter(hs, &small), tr)
			if err != nil {
				t.Fatal(err)
			}
			e.Data = fmt.Sprintf("%d bytes, sha256 %s", n, hex.EncodeToString(hs.Sum(nil))[:16])
			if n <= 200 && utf8.Valid(small.Bytes()) {
				e.Data = small.String() // readable in a diff
			}
		}
		out[p] = e
	}
}

// groupHardLinks turns the hard links of a flattened tree into entries
// like their target's, each naming the whole group.
func groupHardLinks(tree map[string]diffEntry, links map[string]string) {
	find := func(p string) string {
		for seen := 0; links[p] != "" && seen < len(links); seen++ {
			p = links[p]
		}
		return p
	}
	groups := map[string][]string{}
	for p := range links {
		r := find(p)
		if len(groups[r]) == 0 {
			groups[r] = []string{r}
		}
		groups[r] = append(groups[r], p)
	}
	for r, members := range groups {
		slices.Sort(members)
		e := tree[r]
		e.HardLinks = strings.Join(members, " ")
		for _, m := range members {
			tree[m] = e
		}
	}
}

func configOf(t *testing.T, img v1.Image) diffConfig {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	keys := func(m map[string]struct{}) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var hc struct {
		Config struct{ Healthcheck *diffHealth }
	}
	if err := json.Unmarshal(raw, &hc); err != nil {
		t.Fatal(err)
	}
	// The order of Env is not compared: ENV of a variable the base sets
	// replaces it in place in kiln, as in BuildKit, and moves it to the
	// end in buildah.
	env := slices.Clone(c.Env)
	slices.Sort(env)
	return diffConfig{
		Env: env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User,
		ExposedPorts: keys(c.ExposedPorts), Labels: c.Labels, Volumes: keys(c.Volumes),
		StopSignal: c.StopSignal, Healthcheck: hc.Config.Healthcheck, Shell: c.Shell, OnBuild: c.OnBuild,
		Author: cf.Author,
	}
}
