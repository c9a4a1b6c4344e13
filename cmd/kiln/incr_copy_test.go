package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
	"github.com/kiln-build/kiln/image/store"
)

// incrManifest copies the whole context: the copy step whose second
// build, after a change to the context, is incremental.
const incrManifest = "from: busybox\nsteps:\n  - copy: {src: ., dst: /app/}\n"

// incrTime is the modification time of every file of the test's context:
// before SOURCE_DATE_EPOCH, so the layer keeps it.
var incrTime = time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)

// incrContext writes the first version of the incremental copy test's
// context: files, a subdirectory two deep, a link, a file that a case
// turns into a directory and a directory that one turns into a file.
func incrContext(t *testing.T) string {
	t.Helper()
	dir := writeContext(t, map[string]string{
		"kiln.yml":       incrManifest,
		"a.txt":          "alpha\n",
		"b.txt":          "bravo\n",
		"sub/c.sh":       "#!/bin/sh\necho charlie\n",
		"sub/d.txt":      "delta\n",
		"sub/deep/e.txt": strings.Repeat("echo ", 4000),
		"f":              "foxtrot\n",
		"g/h.txt":        "hotel\n",
		"big/random.bin": strings.Repeat("0123456789abcdef", 1<<14),
		"same/one.txt":   "same\n",
		"same/twin.txt":  "same\n",
	})
	if err := os.Chmod(filepath.Join(dir, "sub/c.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	stampTimes(t, dir)
	return dir
}

// stampTimes sets the modification time of everything under dir (links
// included) to incrTime.
func stampTimes(t *testing.T, dir string) {
	t.Helper()
	ts := unix.NsecToTimespec(incrTime.UnixNano())
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lastLayer returns the diffID of the last layer of the image ref in root.
func lastLayer(t *testing.T, root, ref string) v1.Hash {
	t.Helper()
	s, err := store.Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ids := cf.RootFS.DiffIDs
	return ids[len(ids)-1]
}

// layerTarEntries lists the tar entries of the layer diffID of root (its
// tar, as the store gives it: written again from the layer's directory
// when that is how the store keeps it): name, type, mode, owner, size,
// time, link target and the sha256 of the content.
func layerTarEntries(t *testing.T, root string, diffID v1.Hash) []string {
	t.Helper()
	s, err := store.Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.BlobLayer(v1.Descriptor{MediaType: types.OCIUncompressedLayer, Digest: diffID}, diffID).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %c %o %d:%d %d %s %q %x", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size,
			h.ModTime.UTC().Format(time.RFC3339Nano), h.Linkname, sum.Sum(nil)[:8]))
	}
}

// fileState is what a layer directory's file is: its inode and what a
// container sees of it.
type fileState struct {
	ino      uint64
	mode     uint32
	uid, gid uint32
	size     int64
	mtime    int64
	sum      string
}

// treeState returns the state of every entry under dir, by relative path.
func treeState(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fs := fileState{ino: st.Ino, mode: st.Mode, uid: st.Uid, gid: st.Gid, size: st.Size, mtime: st.Mtim.Nano()}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			fs.sum = hex.EncodeToString(s[:])
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBuildIncrementalCopy changes the context of a copy step in one way
// per case and builds again on the same root: the copy keeps the files
// that did not change as hard links of the previous layer's (which stays
// as it was, inode for inode and byte for byte, and still passes its
// tree check), and its layer is the one a full copy on a fresh root
// makes, tar entry for tar entry (same diffID, same image digest).
func TestBuildIncrementalCopy(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	later := incrTime.Add(time.Hour)
	write := func(name, data string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		// changed are the files that are not kept from the previous layer.
		changed []string
	}{
		{"one file changed", write("b.txt", "bravo, changed\n"), []string{"b.txt"}},
		{"one file added", write("sub/new.txt", "new\n"), nil},
		{"one file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "sub/d.txt")); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"mode changed", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "b.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"b.txt"}},
		// A time alone is not in the cache key: another file changes too.
		{"modification time changed", func(t *testing.T, dir string) {
			write("sub/d.txt", "delta, changed\n")(t, dir)
			if err := os.Chtimes(filepath.Join(dir, "b.txt"), later, later); err != nil {
				t.Fatal(err)
			}
		}, []string{"b.txt"}},
		{"file turned into a directory", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "f")); err != nil {
				t.Fatal(err)
			}
			write("f/inner.txt", "inner\n")(t, dir)
		}, nil},
		{"directory turned into a file", func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			write("g", "golf\n")(t, dir)
		}, nil},
		{"same content and one copy gone", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "same/one.txt")); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := incrContext(t)
			root := buildRoot(t)
			mustKiln(t, root, "build", "-t", "incr:1", dir)
			prevID := lastLayer(t, root, "incr:1")
			prevDir := filepath.Join(root, "layers", prevID.Hex)
			before := treeState(t, prevDir)

			tt.change(t, dir)
			if tt.name != "modification time changed" {
				stampTimes(t, dir) // what changed has the old time: only its content, mode or place differ
			}
			got := digestOf(t, mustKiln(t, root, "build", "-t", "incr:2", dir))
			fresh := buildRoot(t)
			want := digestOf(t, mustKiln(t, fresh, "build", "-t", "incr:2", dir))

			gotID, wantID := lastLayer(t, root, "incr:2"), lastLayer(t, fresh, "incr:2")
			if diff := cmp.Diff(layerTarEntries(t, fresh, wantID), layerTarEntries(t, root, gotID)); diff != "" {
				t.Errorf("incremental copy's layer differs from a full copy's (-full +incremental):\n%s", diff)
			}
			if gotID != wantID || got != want {
				t.Errorf("incremental copy made layer %s (image %s), a full copy %s (image %s)", gotID, got, wantID, want)
			}

			// The previous layer is as it was, inode for inode.
			if diff := cmp.Diff(before, treeState(t, prevDir), cmp.AllowUnexported(fileState{})); diff != "" {
				t.Errorf("the previous layer's directory changed (-before +after):\n%s", diff)
			}
			s, err := store.Open(t.Context(), root)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []v1.Hash{prevID, gotID} {
				if err := s.VerifyLayerDir(t.Context(), id); err != nil {
					t.Errorf("layer %s: %v", id, err)
				}
			}

			// The files that did not change are the previous layer's, hard
			// linked; the changed ones are new files.
			after := treeState(t, filepath.Join(root, "layers", gotID.Hex))
			changed := map[string]bool{}
			for _, c := range tt.changed {
				changed[filepath.Join("app", c)] = true
			}
			for _, p := range []string{"app/a.txt", "app/b.txt", "app/sub/c.sh", "app/sub/deep/e.txt", "app/big/random.bin", "app/same/twin.txt"} {
				shared := after[p].ino == before[p].ino
				if changed[p] && shared {
					t.Errorf("%s changed, but the new layer holds the previous layer's inode", p)
				}
				if !changed[p] && !shared {
					t.Errorf("%s did not change, but the new layer holds a copy of it (inode %d), not the previous layer's file (inode %d)", p, after[p].ino, before[p].ino)
				}
			}
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(root, "layers", gotID.Hex, "app/a.txt"), &st); err == nil && st.Nlink < 2 {
				t.Errorf("app/a.txt of the new layer has %d links, want the previous layer's too", st.Nlink)
			}
		})
	}
}

// TestBuildIncrementalCopyDockerfile: a Dockerfile's COPY (two sources,
// --chmod) built again after one file changed keeps the others as the
// previous layer's files and makes the layer a full copy makes.
func TestBuildIncrementalCopyDockerfile(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := incrContext(t)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nCOPY --chmod=0640 sub big /app/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stampTimes(t, dir)
	build := []string{"build", "-f", filepath.Join(dir, "Dockerfile"), "-t", "incr:df", dir}
	root := buildRoot(t)
	mustKiln(t, root, build...)
	prev := treeState(t, filepath.Join(root, "layers", lastLayer(t, root, "incr:df").Hex))
	if err := os.WriteFile(filepath.Join(dir, "sub/d.txt"), []byte("delta, changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stampTimes(t, dir)
	mustKiln(t, root, build...)
	fresh := buildRoot(t)
	mustKiln(t, fresh, build...)
	got, want := lastLayer(t, root, "incr:df"), lastLayer(t, fresh, "incr:df")
	if got != want {
		t.Errorf("incremental COPY made layer %s, a full one %s:\n%s", got, want, cmp.Diff(layerTarEntries(t, fresh, want), layerTarEntries(t, root, got)))
	}
	now := treeState(t, filepath.Join(root, "layers", got.Hex))
	for p, kept := range map[string]bool{"app/c.sh": true, "app/deep/e.txt": true, "app/random.bin": true, "app/d.txt": false} {
		if shared := now[p].ino == prev[p].ino; shared != kept {
			t.Errorf("%s: shares the previous layer's inode: %v, want %v", p, shared, kept)
		}
	}
}

// BenchmarkCopy5kChanged builds a copy of a context like the copy5k
// benchmark's (5,000 small files in 50 directories and one 20 MiB file)
// again and again on one root, one small file changed before each build:
// the case an incremental copy makes cheap. Besides the wall time it
// reports the process's CPU time per build (cpu-ns/op), which on a
// machine shared with other work varies less.
func BenchmarkCopy5kChanged(b *testing.B) {
	enginetest.RequireRoot(b)
	dir := b.TempDir()
	line := strings.Repeat("the quick brown fox jumps over the lazy dog ", 48)
	for i := range 5000 {
		d := filepath.Join(dir, "files", fmt.Sprintf("d%02d", i/100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d.txt", i)), []byte(line[:64+(i*7919)%1984]), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 20<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := os.WriteFile(filepath.Join(dir, "random.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kiln.yml"), []byte("from: busybox\nsteps:\n  - copy: {src: ., dst: /ctx/}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(b.TempDir(), "root")
	benchKiln(b, root, "import", enginetest.Busybox(b), "-t", "busybox", "--cmd", "/bin/sh")
	benchKiln(b, root, "build", dir)
	changed := filepath.Join(dir, "files", "d00", "f0000.txt")
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	n := 0
	for b.Loop() {
		n++
		if err := os.WriteFile(changed, fmt.Appendf(nil, "changed %d\n", n), 0o644); err != nil {
			b.Fatal(err)
		}
		benchKiln(b, root, "build", dir)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
}

// TestIncrementalCopyCrash kills kiln with SIGKILL at random moments of
// incremental copies (linking the previous layer's files, copying,
// committing): the previous layer stays as it was, the root is left with
// no temp file or snapshot once the next build has run, every cache
// record verifies, and the build after each crash makes the layer a full
// copy on a fresh root makes.
func TestIncrementalCopyCrash(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	files := map[string]string{"kiln.yml": incrManifest}
	for i := range 600 {
		files[fmt.Sprintf("d%d/f%03d.txt", i/100, i)] = strings.Repeat(fmt.Sprintf("file %d\n", i), 1+i%40)
	}
	dir := writeContext(t, files)
	stampTimes(t, dir)
	root := buildRoot(t)
	mustKiln(t, root, "build", "-t", "incr:1", dir)
	prevDir := filepath.Join(root, "layers", lastLayer(t, root, "incr:1").Hex)
	before := treeState(t, prevDir)

	// The span of the kill delays: a whole incremental build.
	change := func(i int) {
		j := i * 97 % 599
		p := filepath.Join(dir, fmt.Sprintf("d%d/f%03d.txt", j/100, j))
		if err := os.WriteFile(p, fmt.Appendf(nil, "changed %d\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
		stampTimes(t, dir)
	}
	change(0)
	start := time.Now()
	if out, err := kilnCommand(t, root, "build", dir).CombinedOutput(); err != nil {
		t.Fatalf("kiln build: %v\n%s", err, out)
	}
	span := time.Since(start)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	for i := 1; i <= 6; i++ {
		change(i)
		cmd := kilnCommand(t, root, "build", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.Int64N(int64(span)))
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		mustKiln(t, root, "build", "-t", "incr:2", dir)
		for _, p := range leftInRoot(root) {
			t.Errorf("iteration %d (killed after %v): left behind: %s", i, delay, p)
		}
		if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) > 0 {
			t.Errorf("iteration %d (killed after %v): %d temp files left in the store", i, delay, len(ents))
		}
		verifyCache(t, root)
	}
	if diff := cmp.Diff(before, treeState(t, prevDir), cmp.AllowUnexported(fileState{})); diff != "" {
		t.Errorf("the first layer's directory changed (-before +after):\n%s", diff)
	}
	fresh := buildRoot(t)
	mustKiln(t, fresh, "build", "-t", "incr:2", dir)
	if got, want := lastLayer(t, root, "incr:2"), lastLayer(t, fresh, "incr:2"); got != want {
		t.Errorf("after the crashes the copy made layer %s, a full copy %s:\n%s", got, want,
			cmp.Diff(layerTarEntries(t, fresh, want), layerTarEntries(t, root, got)))
	}
	after := treeState(t, filepath.Join(root, "layers", lastLayer(t, root, "incr:2").Hex))
	if after["app/d5/f599.txt"].ino != before["app/d5/f599.txt"].ino {
		t.Error("the last build copied app/d5/f599.txt, which never changed, instead of keeping the first layer's")
	}
}
