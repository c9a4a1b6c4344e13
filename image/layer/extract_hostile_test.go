package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Hostile layer tars beyond those of TestExtractHostile: each either
// extracts inside its directory or fails with a clear error, and nothing
// outside the directory changes.

// rawBlock is one 512-byte tar header block in ustar form, with its
// checksum, for tars that archive/tar will not write.
func rawBlock(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 1_700_000_000))
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// pad rounds b up to a whole number of 512-byte blocks.
func pad(b []byte) []byte {
	if n := len(b) % 512; n != 0 {
		b = append(b, make([]byte, 512-n)...)
	}
	return b
}

// paxRecord formats one PAX record, its length prefix included.
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec)
	for {
		s := strconv.Itoa(n) + rec
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseTar is a tar of one PAX 1.0 sparse file named name that claims
// realSize bytes, all a hole but for data at its end.
func sparseTar(name string, realSize int64, data string) []byte {
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(realSize, 10))
	sparseMap := pad([]byte(fmt.Sprintf("1\n%d\n%d\n", realSize-int64(len(data)), len(data))))
	var out []byte
	out = append(out, rawBlock("PaxHeaders/"+name, tar.TypeXHeader, int64(len(pax)))...)
	out = append(out, pad([]byte(pax))...)
	out = append(out, rawBlock("GNUSparseFile.0/"+name, tar.TypeReg, int64(len(sparseMap)+len(data)))...)
	out = append(out, pad(append(sparseMap, data...))...)
	return append(out, make([]byte, 1024)...)
}

// hostileFixture reads a hostile tar of the repository's
// testdata/hostile, which image/store's tests unpack too.
func hostileFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtractHostileMore(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		tar     func(t *testing.T, base string) []byte
		wantErr string // empty: must succeed, contained
		check   func(t *testing.T, root string)
	}{
		{
			name: "symlink to / then a file through it",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{symlink("rootfs", "/"), file("rootfs"+base+"/sentinel/x", "pwned")})
			},
			wantErr: "not a directory",
		},
		{
			name: "symlink to / then a directory and a file through it",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{symlink("rootfs", "/"), dir("rootfs/tmp/"), file("rootfs/tmp/x", "pwned")})
			},
			wantErr: "not a directory",
		},
		{
			name: "relative symlink climbing out then a file through it",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{dir("a/"), symlink("a/up", "../../sentinel"), file("a/up/x", "pwned")})
			},
			wantErr: "not a directory",
		},
		{
			name: "hardlink to an absolute outside path",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{hardlink("l", filepath.Join(base, "secret"))})
			},
			wantErr: "no such file", // taken inside root, where it does not exist
		},
		{
			name: "hardlink climbing out",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{dir("a/"), hardlink("a/l", "a/../../secret")})
			},
			wantErr: "escapes",
		},
		{
			name: "hardlink to a directory",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{dir("d/"), hardlink("l", "d")})
			},
			wantErr: "is a directory",
		},
		{
			name: "device nodes and a fifo stay inside",
			tar: func(t *testing.T, base string) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				for _, h := range []*tar.Header{
					{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
					{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 8, Devminor: 0},
					{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644},
					{Name: "/dev/abs", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 5},
				} {
					if err := tw.WriteHeader(h); err != nil {
						t.Fatal(err)
					}
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			},
			check: func(t *testing.T, root string) {
				want := map[string]string{"dev/null": "char 1:3", "dev/sda": "block 8:0", "fifo": "fifo", "dev/abs": "char 1:5"}
				got := map[string]string{}
				for name := range want {
					var st unix.Stat_t
					if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
						t.Fatal(err)
					}
					switch fileType(&st) {
					case unix.S_IFCHR:
						got[name] = fmt.Sprintf("char %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
					case unix.S_IFBLK:
						got[name] = fmt.Sprintf("block %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
					case unix.S_IFIFO:
						got[name] = "fifo"
					default:
						got[name] = fmt.Sprintf("mode %o", st.Mode)
					}
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("special files (-want +got):\n%s", d)
				}
				if _, err := os.Stat("/dev/abs"); err == nil {
					t.Error("/dev/abs exists on the host")
				}
			},
		},
		{
			name: "setuid and setgid files keep their bits and owner, inside",
			tar: func(t *testing.T, base string) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				for _, h := range []*tar.Header{
					{Name: "bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0, Size: 2},
					{Name: "bin/wall", Typeflag: tar.TypeReg, Mode: 0o2755, Uid: 1000, Gid: 5, Size: 2},
				} {
					if err := tw.WriteHeader(h); err != nil {
						t.Fatal(err)
					}
					if _, err := tw.Write([]byte("#!")); err != nil {
						t.Fatal(err)
					}
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			},
			check: func(t *testing.T, root string) {
				got := map[string]string{}
				for _, name := range []string{"bin/su", "bin/wall"} {
					var st unix.Stat_t
					if err := unix.Lstat(filepath.Join(root, name), &st); err != nil {
						t.Fatal(err)
					}
					got[name] = fmt.Sprintf("%o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
				}
				want := map[string]string{"bin/su": "4755 0:0", "bin/wall": "2755 1000:5"}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("setuid files (-want +got):\n%s", d)
				}
			},
		},
		{
			name: "overlay attributes in the tar are ignored",
			tar: func(t *testing.T, base string) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				for _, h := range []*tar.Header{
					{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: map[string]string{
						"SCHILY.xattr.trusted.overlay.redirect": base,
						"SCHILY.xattr.trusted.overlay.opaque":   "y",
						"SCHILY.xattr.user.kept":                "1",
					}},
					{Name: "m", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{
						"SCHILY.xattr.trusted.overlay.metacopy": "",
						"SCHILY.xattr.trusted.overlay.origin":   "x",
					}},
				} {
					if err := tw.WriteHeader(h); err != nil {
						t.Fatal(err)
					}
				}
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				return buf.Bytes()
			},
			check: func(t *testing.T, root string) {
				got := map[string]map[string]string{}
				for _, name := range []string{"d", "m"} {
					got[name] = testXattrs(t, filepath.Join(root, name))
				}
				var x xattrReader
				for _, name := range []string{"d", "m"} {
					_, ovl, err := x.read(filepath.Join(root, name))
					if err != nil {
						t.Fatal(err)
					}
					if len(ovl) != 0 {
						t.Errorf("%s has overlay attributes %v, want none", name, ovl)
					}
				}
				want := map[string]map[string]string{"d": {"user.kept": "1"}, "m": nil}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("attributes (-want +got):\n%s", d)
				}
			},
		},
		{
			name:    "whiteout dot dot in a subdirectory",
			tar:     func(t *testing.T, base string) []byte { return hostileFixture(t, "whiteout-dotdot.tar") },
			wantErr: "invalid whiteout",
		},
		{
			name:    "whiteout of dot dot through an absolute name",
			tar:     func(t *testing.T, base string) []byte { return makeTar(t, []tarEntry{file("/.wh...", "")}) },
			wantErr: "invalid whiteout",
		},
		{
			name: "duplicate entries of every type",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{
					symlink("x", filepath.Join(base, "sentinel")), dir("x/"), file("x/in", "1"),
					file("y", "1"), symlink("y", filepath.Join(base, "secret")), file("y", "2"),
					dir("z/"), file("z/a", "a"), symlink("z", "/"), dir("z/"),
				})
			},
			check: func(t *testing.T, root string) {
				if b, err := os.ReadFile(filepath.Join(root, "x/in")); err != nil || string(b) != "1" {
					t.Errorf("x/in: %q, %v", b, err)
				}
				if b, err := os.ReadFile(filepath.Join(root, "y")); err != nil || string(b) != "2" {
					t.Errorf("y: %q, %v", b, err)
				}
				if fi, err := os.Lstat(filepath.Join(root, "z")); err != nil || !fi.IsDir() {
					t.Errorf("z: %v, %v; want the last entry, a directory", fi, err)
				}
			},
		},
		{
			name:    "a 10 GB file with a short body",
			tar:     func(t *testing.T, base string) []byte { return hostileFixture(t, "short-body.tar") },
			wantErr: "unexpected EOF",
		},
		{
			name: "a 10 GB sparse file",
			tar: func(t *testing.T, base string) []byte {
				return sparseTar("big", 10<<30, "end")
			},
			check: func(t *testing.T, root string) {
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(root, "big"), &st); err != nil {
					t.Fatal(err)
				}
				if st.Size != 10<<30 {
					t.Errorf("big has %d bytes, want %d", st.Size, int64(10)<<30)
				}
				if used := st.Blocks * 512; used > 1<<20 {
					t.Errorf("big uses %d bytes of disk, want its holes kept as holes", used)
				}
				f, err := os.Open(filepath.Join(root, "big"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				tail := make([]byte, 3)
				if _, err := f.ReadAt(tail, 10<<30-3); err != nil || string(tail) != "end" {
					t.Errorf("the end of big: %q, %v", tail, err)
				}
			},
		},
		{
			name: "a sparse file whose map points past its size",
			tar: func(t *testing.T, base string) []byte {
				b := sparseTar("big", 10, "0123456789abcdef")
				return b
			},
			wantErr: "extract layer",
		},
		{
			name:    "a path past PATH_MAX",
			tar:     func(t *testing.T, base string) []byte { return hostileFixture(t, "path-max.tar") },
			wantErr: "file name too long",
		},
		{
			name: "a component past NAME_MAX",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{file(strings.Repeat("n", 300), "x")})
			},
			wantErr: "file name too long",
		},
		{
			name: "a symlink with a target past PATH_MAX",
			tar: func(t *testing.T, base string) []byte {
				return makeTar(t, []tarEntry{symlink("l", strings.Repeat("../", 1500))})
			},
			wantErr: "file name too long",
		},
		{
			name: "a NUL in a name",
			tar: func(t *testing.T, base string) []byte {
				b := rawBlock("a\x00/../../sentinel/x", tar.TypeReg, 0)
				return append(b, make([]byte, 1024)...)
			},
			check: func(t *testing.T, root string) {
				if _, err := os.Lstat(filepath.Join(root, "a")); err != nil {
					t.Errorf("root/a: %v; want the name cut at the NUL", err)
				}
			},
		},
		{
			name:    "an unsupported entry type",
			tar:     func(t *testing.T, base string) []byte { return append(rawBlock("x", 'Z', 0), make([]byte, 1024)...) },
			wantErr: "unsupported entry type",
		},
		{
			name:    "garbage",
			tar:     func(t *testing.T, base string) []byte { return bytes.Repeat([]byte("not a tar "), 100) },
			wantErr: "read tar",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := hostileBase(t)
			root := filepath.Join(base, "root")
			start := time.Now()
			err := Extract(context.Background(), bytes.NewReader(tt.tar(t, base)), root)
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("Extract took %v", took)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Extract: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Extract: error %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil {
				t.Logf("error: %.300s", err)
			}
			checkContained(t, base)
			if tt.check != nil && err == nil {
				tt.check(t, root)
			}
		})
	}
}

// TestExtractManyEntries extracts a tar of 100,000 entries made in memory:
// it finishes, quickly, with every entry there.
func TestExtractManyEntries(t *testing.T) {
	requireRoot(t)
	const dirs, perDir = 100, 999 // 100 + 99,900 = 100,000 entries
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		mt := time.Unix(1_700_000_000, 0)
		for d := range dirs {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%03d/", d), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt}); err != nil {
				pw.CloseWithError(err)
				return
			}
			for f := range perDir {
				if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("d%03d/f%03d", d, f), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mt}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	// On a tmpfs, so that the figure is Extract's and not the disk's (the
	// ext4 disk of a small VM creates ~1,000-2,000 files a second).
	tmp := t.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=1g"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(tmp, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount the tmpfs: %v", err)
		}
	})
	base := tmp
	if err := os.Mkdir(filepath.Join(base, "sentinel"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	start := time.Now()
	if err := Extract(context.Background(), pr, root); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	took := time.Since(start)
	t.Logf("100,000 entries extracted in %v", took)
	if took > 20*time.Second {
		t.Errorf("extracting 100,000 entries took %v, want < 20 s", took)
	}
	n := 0
	for d := range dirs {
		ents, err := os.ReadDir(filepath.Join(root, fmt.Sprintf("d%03d", d)))
		if err != nil {
			t.Fatal(err)
		}
		n += 1 + len(ents)
	}
	if n != dirs*(1+perDir) {
		t.Errorf("%d entries extracted, want %d", n, dirs*(1+perDir))
	}
	checkContained(t, base)
}

// TestExtractDeepTreeWithinLimits extracts a tree nested close to
// PATH_MAX: it works, so the limit test above fails for its length only.
func TestExtractDeepTreeWithinLimits(t *testing.T) {
	requireRoot(t)
	base := hostileBase(t)
	root := filepath.Join(base, "root")
	name := strings.Repeat("d/", (4000-len(root))/2) + "f"
	err := Extract(context.Background(), bytes.NewReader(makeTar(t, []tarEntry{file(name, "deep")})), root)
	if err != nil && !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("Extract of a %d-byte path: %v", len(root)+1+len(name), err)
	}
	if err != nil {
		t.Fatalf("Extract of a %d-byte path (under PATH_MAX): %v", len(root)+1+len(name), err)
	}
	if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != "deep" {
		t.Errorf("the deep file: %q, %v", b, err)
	}
}
