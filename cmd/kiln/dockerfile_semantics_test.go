package main

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// Regression tests for the places where kiln built a Dockerfile otherwise
// than Docker documents and BuildKit builds it (issue 16, items 1 to 9).
// Each names the BuildKit v0.34.2 source (dockerfile2llb, and the
// tonistiigi/fsutil copy it uses, version a72de9dcf763) that sets the
// behaviour; paths are relative to the module roots in ~/go/pkg/mod.

// semBuild builds the Dockerfile in dir (with args) and returns the image
// and its flattened file tree; a failed build fails the test.
func semBuild(t *testing.T, root, dir string, args ...string) (v1.Image, map[string]diffEntry) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "oci")
	mustKiln(t, root, append([]string{"build", "-f", filepath.Join(dir, "Dockerfile"), "--output", "type=oci,dest=" + out}, append(args, dir)...)...)
	img := layoutImage(t, out)
	return img, flatten(t, img)
}

// wantEntry checks the type, mode and owner of the file p of a tree.
func wantEntry(t *testing.T, tree map[string]diffEntry, p string, typ byte, mode string, uid, gid int) {
	t.Helper()
	e, ok := tree[p]
	if !ok {
		t.Errorf("%s: missing from the image", p)
		return
	}
	if e.Type != typ || e.Mode != mode || e.UID != uid || e.GID != gid {
		t.Errorf("%s: type %q mode %s owner %d:%d, want type %q mode %s owner %d:%d", p, e.Type, e.Mode, e.UID, e.GID, typ, mode, uid, gid)
	}
}

// TestDockerfileChmodSpecialBits (item 1): --chmod keeps the setuid,
// setgid and sticky bits, and applies to every file and directory copied;
// the directories made for the destination get its permission bits only.
//
//   - fsutil copy/copy_linux.go:31-44: a copied file or directory gets
//     os.FileMode(mode).Perm() plus ModeSetuid/ModeSetgid/ModeSticky from
//     S_ISUID/S_ISGID/S_ISVTX, applied by copy.go:469-472 (copyFileInfo)
//     to every entry the copy makes, directories included
//     (copy.go:574-583, 641-650).
//   - fsutil copy/copy.go:85-89 and 169-173: the missing destination
//     directories are made by MkdirAll with os.FileMode(mode), which keeps
//     only the permission bits (Go's special bits are not 04000...).
//   - dockerfile2llb/convert_copy.go:68-77: --chmod is parsed as octal
//     into ChmodOpt.Mode.
func TestDockerfileChmodSpecialBits(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY --chmod=4755 tool /out/tool
COPY --chmod=2750 tree /t/
COPY --chmod=1777 tree /sticky
`,
		"tool":         "#!/bin/sh\n",
		"tree/f":       "f",
		"tree/sub/g":   "g",
		"tree/sub2/.k": "k",
	})
	_, tree := semBuild(t, root, dir)
	wantEntry(t, tree, "/out/tool", tar.TypeReg, "4755", 0, 0)
	wantEntry(t, tree, "/out", tar.TypeDir, "0755", 0, 0)
	wantEntry(t, tree, "/t", tar.TypeDir, "0750", 0, 0)
	wantEntry(t, tree, "/t/f", tar.TypeReg, "2750", 0, 0)
	wantEntry(t, tree, "/t/sub", tar.TypeDir, "2750", 0, 0)
	wantEntry(t, tree, "/t/sub/g", tar.TypeReg, "2750", 0, 0)
	wantEntry(t, tree, "/sticky", tar.TypeDir, "0777", 0, 0)
	wantEntry(t, tree, "/sticky/sub2", tar.TypeDir, "1777", 0, 0)
	wantEntry(t, tree, "/sticky/sub2/.k", tar.TypeReg, "1777", 0, 0)
}

// TestYAMLCopyModeSpecialBits (item 1): a YAML copy's mode keeps the
// setuid, setgid and sticky bits too (it applies to files only: a YAML
// copy's directories keep their modes).
func TestYAMLCopyModeSpecialBits(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"tool": "#!/bin/sh\n",
		"kiln.yml": `from: busybox
steps:
  - copy: {src: tool, dst: /usr/bin/tool, mode: "4755"}
  - copy: {src: tool, dst: /usr/bin/tool2, mode: "3711"}
`,
	})
	out := filepath.Join(t.TempDir(), "oci")
	mustKiln(t, root, "build", "--output", "type=oci,dest="+out, dir)
	tree := flatten(t, layoutImage(t, out))
	wantEntry(t, tree, "/usr/bin/tool", tar.TypeReg, "4755", 0, 0)
	wantEntry(t, tree, "/usr/bin/tool2", tar.TypeReg, "3711", 0, 0)
}

// TestDockerfileCopyFromDestOwner (item 2): the destination directory
// that COPY --from makes is owned by root (or by --chown's owner), not by
// the source directory's owner; what is copied under it keeps its owners.
//
//   - fsutil copy/copy.go:146-179 (prepareTargetDir): the destination of a
//     directory's contents is made by MkdirAll with the copy's chowner;
//     buildkit solver/llbsolver/file/backend_unix.go:13-31
//     (mapUserToChowner): without --chown that chowner gives nil for a
//     made directory (old == nil), so it stays owned by the daemon: root.
//   - fsutil copy/copy.go:641-650, 455-460: the destination existing,
//     copyDirectoryOnly does not create it and copyFileInfo (the owner of
//     the source) is not applied to it.
func TestDockerfileCopyFromDestOwner(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox AS src
RUN mkdir -p /d/sub && echo x > /d/sub/f && chown -R 5:6 /d && mkdir /e && echo y > /e/g && chown -R 12:34 /e
FROM busybox
COPY --from=src /d /newd
COPY --from=src /e /new/e2
COPY --from=src --chown=7:8 /d /chowned
`,
	})
	_, tree := semBuild(t, root, dir)
	wantEntry(t, tree, "/newd", tar.TypeDir, "0755", 0, 0)
	wantEntry(t, tree, "/newd/sub", tar.TypeDir, "0755", 5, 6)
	wantEntry(t, tree, "/newd/sub/f", tar.TypeReg, "0644", 5, 6)
	wantEntry(t, tree, "/new", tar.TypeDir, "0755", 0, 0)
	wantEntry(t, tree, "/new/e2", tar.TypeDir, "0755", 0, 0)
	wantEntry(t, tree, "/new/e2/g", tar.TypeReg, "0644", 12, 34)
	wantEntry(t, tree, "/chowned", tar.TypeDir, "0755", 7, 8)
	wantEntry(t, tree, "/chowned/sub/f", tar.TypeReg, "0644", 7, 8)
}

// TestDockerfileHardLinks (item 3): hard links within one copied source
// stay hard links, in the layer (a tar hardlink entry) and in the
// container, both when COPY copies a context directory and when ADD
// unpacks a tar holding them.
//
//   - fsutil copy/copy.go:436-445 with hardlink.go:13-27: a regular file
//     whose inode was already copied by this copier is made with
//     os.Link to the first copy; one copier per copied source
//     (copy.go:110, called once per match by buildkit
//     solver/llbsolver/file/backend.go:316-327).
//   - ADD unpacks with moby/go-archive's chrootarchive.Untar (buildkit
//     solver/llbsolver/file/unpack.go:57), which makes a tar's hardlink
//     entries as hard links (go-archive v0.2.0 archive.go:469).
func TestDockerfileHardLinks(t *testing.T) {
	enginetest.RequireRoot(t)
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY tree /ctx/
ADD links.tar /x/
RUN stat -c '%h %n' /ctx/a.txt /ctx/sub/c.txt /x/f /x/d/g > /nlinks
`,
		"tree/a.txt": "shared content\n",
	})
	mustLink(t, filepath.Join(dir, "tree/a.txt"), filepath.Join(dir, "tree/b.txt"))
	if err := os.Mkdir(filepath.Join(dir, "tree/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustLink(t, filepath.Join(dir, "tree/a.txt"), filepath.Join(dir, "tree/sub/c.txt"))
	writeTar(t, filepath.Join(dir, "links.tar"), []*tar.Header{
		{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
		{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "d/g", Typeflag: tar.TypeLink, Linkname: "f"},
	}, map[string]string{"f": "data\n"})

	_, tree := semBuild(t, root, dir)
	if got, want := tree["/nlinks"].Data, "3 /ctx/a.txt\n3 /ctx/sub/c.txt\n2 /x/f\n2 /x/d/g\n"; got != want {
		t.Errorf("link counts in the container:\n%s\nwant:\n%s", got, want)
	}
	wantLinked(t, tree, "/ctx/a.txt", "/ctx/b.txt", "/ctx/sub/c.txt")
	wantLinked(t, tree, "/x/f", "/x/d/g")
}

// wantLinked checks that the files ps of a tree are one hard-link group
// (the flattening gives each path of a group as a regular entry naming
// the whole group).
func wantLinked(t *testing.T, tree map[string]diffEntry, ps ...string) {
	t.Helper()
	want := slices.Clone(ps)
	slices.Sort(want)
	for _, p := range ps {
		if e := tree[p]; e.Type != tar.TypeReg || e.HardLinks != strings.Join(want, " ") {
			t.Errorf("%s: tar type %q, hard-link group %q; want a regular file in one hard-link group of %v", p, e.Type, e.HardLinks, want)
		}
	}
}

func mustLink(t *testing.T, oldname, newname string) {
	t.Helper()
	if err := os.Link(oldname, newname); err != nil {
		t.Fatal(err)
	}
}

// writeTar writes a tar of hdrs, the regular files holding data[name].
func writeTar(t *testing.T, file string, hdrs []*tar.Header, data map[string]string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, h := range hdrs {
		h.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(data[h.Name])); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDockerfileAbsoluteLinkInContext (item 4): an absolute link in the
// context, named as a source, is followed inside the context (its target
// taken from the context's root); inside a copied directory it is copied
// as the link it is.
//
//   - fsutil copy/copy.go:30-44 (rootPath) and 117-121: with
//     FollowSymlinks (set by dockerfile2llb/convert_copy.go:282) a source
//     is resolved by continuity's fs.RootPath, which resolves absolute
//     link targets and ".." inside the root.
//   - fsutil copy/copy.go:448-454: a link met while copying a directory
//     is made again with its target unchanged.
func TestDockerfileAbsoluteLinkInContext(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY absin /got
COPY dir /dir/
COPY up/f.txt /up.txt
`,
		"real/f.txt": "inside the context\n",
		"dir/x":      "x",
	})
	for name, target := range map[string]string{"absin": "/real/f.txt", "dir/inner": "/real/f.txt", "up": "../../../real"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	_, tree := semBuild(t, root, dir)
	if e := tree["/got"]; e.Type != tar.TypeReg || e.Data != "inside the context\n" {
		t.Errorf("/got: %+v, want the context's real/f.txt", e)
	}
	if e := tree["/up.txt"]; e.Type != tar.TypeReg || e.Data != "inside the context\n" {
		t.Errorf("/up.txt: %+v, want the context's real/f.txt (.. stops at the context's root)", e)
	}
	if e := tree["/dir/inner"]; e.Type != tar.TypeSymlink || e.Link != "/real/f.txt" {
		t.Errorf("/dir/inner: %+v, want the link to /real/f.txt", e)
	}
}

// TestDockerfileEmptyWildcard (item 5): a wildcard source that matches
// nothing copies nothing (and makes no destination) without failing; a
// missing source without a wildcard still fails the build.
//
//   - dockerfile2llb/convert_copy.go:280-290: every context source is
//     copied with AllowWildcard and AllowEmptyWildcard.
//   - buildkit solver/llbsolver/file/backend.go:299-314: an empty match
//     returns before anything is copied; without a wildcard
//     (fsutil copy/copy.go:46-67, ResolveWildcards) the path itself is
//     copied, and a missing one fails.
func TestDockerfileEmptyWildcard(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY *.nomatch /empty/
COPY a.txt *.nomatch /two/
COPY no[t]/*.txt /three/
`,
		"a.txt": "a",
	})
	_, tree := semBuild(t, root, dir)
	if _, ok := tree["/empty"]; ok {
		t.Errorf("/empty was made by a copy that copied nothing")
	}
	wantEntry(t, tree, "/two/a.txt", tar.TypeReg, "0644", 0, 0)

	missing := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY missing.txt /x\n"})
	r := kiln(t, root, nil, "build", "-f", filepath.Join(missing, "Dockerfile"), missing)
	if r.code == 0 || !strings.Contains(r.stderr, `"missing.txt"`) {
		t.Errorf("COPY of a missing file: exit %d, stderr:\n%s\nwant a failure naming it", r.code, r.stderr)
	}
}

// TestDockerfileTargetSkipsUnneededStages (item 6): --target builds only
// the stages the target needs; an error in what the other stages'
// instructions would evaluate does not fail it, but the whole file is
// still parsed.
//
//   - dockerfile2llb/convert.go:770-775 (dispatchStages): a stage not in
//     allReachable is not dispatched, so its instructions are never
//     expanded (convert.go:1040-1050) nor converted.
//   - dockerfile2llb/convert.go:255-277: the parser and
//     instructions.Parse read every stage first; convert.go:396-418 and
//     941-952 expand every FROM and check every COPY --from.
func TestDockerfileTargetSkipsUnneededStages(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox AS good
RUN echo ok > /ok
FROM busybox AS bad
ARG X
RUN echo ${X:?X must be set}
FROM busybox AS bad2
COPY a.txt b.txt /notadir
FROM good
`,
		"a.txt": "a", "b.txt": "b",
	})
	_, tree := semBuild(t, root, dir, "--target", "good")
	if tree["/ok"].Data != "ok\n" {
		t.Errorf("/ok holds %q, want ok", tree["/ok"].Data)
	}

	// A syntax error in an unneeded stage still fails.
	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS good\nFROM busybox AS other\nCOPY --bogus=1 a /\n"})
	r := kiln(t, root, nil, "build", "-f", filepath.Join(bad, "Dockerfile"), "--target", "good", bad)
	if r.code == 0 || !strings.Contains(r.stderr, "bogus") {
		t.Errorf("unknown flag in an unneeded stage: exit %d, stderr:\n%s\nwant a failure naming it", r.code, r.stderr)
	}
}

// TestDockerfileMaintainerAndStartInterval (item 7): MAINTAINER sets the
// config's author, and HEALTHCHECK --start-interval its StartInterval.
//
//   - dockerfile2llb/convert.go:1570-1572 (dispatchMaintainer): Author.
//   - dockerfile2llb/convert.go:1630-1640 (dispatchHealthcheck):
//     StartInterval is stored with the other durations.
func TestDockerfileMaintainerAndStartInterval(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
MAINTAINER Jane Doe <jane@example.com>
HEALTHCHECK --interval=30s --start-period=5s --start-interval=2s CMD true
`,
	})
	img, _ := semBuild(t, root, dir)
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Author string `json:"author"`
		Config struct {
			Healthcheck map[string]any
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	if cf.Author != "Jane Doe <jane@example.com>" {
		t.Errorf("author %q, want the MAINTAINER", cf.Author)
	}
	if got := cf.Config.Healthcheck["StartInterval"]; got != float64(2*time.Second) {
		t.Errorf("Healthcheck %v: StartInterval %v, want %d", cf.Config.Healthcheck, got, 2*time.Second)
	}
}

// TestDockerfileBackslashSource (item 8): on Linux a backslash in a
// source name escapes the next character; it is not a wildcard, and a
// name whose only specials are escaped is the file of that very name.
//
//   - fsutil copy/copy.go:674-685 (containsWildcards): "\\" skips the
//     next character and is not itself a wildcard; without a wildcard,
//     ResolveWildcards (copy.go:46-67) returns the path unchanged.
//   - The quotes keep the backslash: shell.Lex removes it from an
//     unquoted word (dockerfile2llb/convert.go:1040-1046).
func TestDockerfileBackslashSource(t *testing.T) {
	root := buildRoot(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY "a\b" /one/
COPY "c\*d" /two/
`,
		`a\b`:  "backslash b",
		"ab":   "plain ab",
		`c\*d`: "backslash star",
		"c*d":  "star",
	})
	_, tree := semBuild(t, root, dir)
	if e, ok := tree[`/one/a\b`]; !ok || e.Data != "backslash b" {
		t.Errorf(`/one/a\b: %+v, want the file named a\b`, e)
	}
	if _, ok := tree["/one/ab"]; ok {
		t.Errorf(`/one/ab was copied for "a\b"`)
	}
	if e, ok := tree[`/two/c\*d`]; !ok || e.Data != "backslash star" {
		t.Errorf(`/two/c\*d: %+v, want the file named c\*d`, e)
	}
	if _, ok := tree["/two/c*d"]; ok {
		t.Errorf(`/two/c*d was copied for "c\*d"`)
	}
}

// TestDockerfileCopyFromVariable (item 9): a variable in COPY --from is
// refused, global ARG or not, in any stage.
//
//   - dockerfile2llb/convert.go:941-952 (toCommand): --from is expanded
//     with no variables and must stay as written, for every stage
//     (buildStageDependencyGraph, convert.go:516-523, runs before the
//     stages the target needs are chosen).
func TestDockerfileCopyFromVariable(t *testing.T) {
	root := buildRoot(t)
	for name, df := range map[string]string{
		"global": "ARG SRC=build\nFROM busybox AS build\nFROM busybox\nCOPY --from=$SRC /bin/sh /sh\n",
		"local":  "FROM busybox AS build\nFROM busybox\nARG SRC=build\nCOPY --from=${SRC} /bin/sh /sh\n",
		"unused": "FROM busybox AS build\nFROM busybox AS other\nCOPY --from=$X /bin/sh /sh\nFROM build\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": df})
			r := kiln(t, root, nil, "build", "-f", filepath.Join(dir, "Dockerfile"), dir)
			if r.code == 0 || !strings.Contains(r.stderr, "variable expansion is not supported for --from") {
				t.Errorf("exit %d, stderr:\n%s\nwant the build refused: variable expansion is not supported for --from", r.code, r.stderr)
			}
		})
	}
}
