package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestCopyLayerGolden builds copy steps (YAML and Dockerfile, with and
// without a mode and owner) of a context of 600 files, links, a hard link
// and an empty directory, from scratch under SOURCE_DATE_EPOCH, and checks
// each copy's layer against the diffID that kiln made before copies wrote
// files in parallel (452af1b): the same bytes, in the same order.
func TestCopyLayerGolden(t *testing.T) {
	enginetest.RequireRoot(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	files := map[string]string{}
	for i := range 600 {
		files[fmt.Sprintf("files/d%d/f%03d.txt", i%6, i)] = strings.Repeat(fmt.Sprintf("file %d\n", i), i%50)
	}
	ctx := writeContext(t, files)
	for i := range 600 {
		if i%7 == 0 {
			if err := os.Chmod(filepath.Join(ctx, fmt.Sprintf("files/d%d/f%03d.txt", i%6, i)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, l := range [][2]string{{"f000.txt", "files/d0/link"}, {"../d1", "files/d2/dirlink"}, {"/nowhere", "files/dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(ctx, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(ctx, "files/d3/f003.txt"), filepath.Join(ctx, "files/d4/hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(ctx, "files/empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1600000000, 0) // before the epoch: kept
	if err := filepath.Walk(ctx, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		// Modes that do not depend on the umask.
		switch {
		case fi.IsDir() && fi.Name() != "empty":
			err = os.Chmod(p, 0o755)
		case fi.Mode().IsRegular() && fi.Mode().Perm() != 0o755:
			err = os.Chmod(p, 0o644)
		}
		if err != nil {
			return err
		}
		ts := unix.NsecToTimespec(old.UnixNano())
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		t.Fatal(err)
	}
	manifests := t.TempDir()
	root := newRoot(t)
	for _, tc := range []struct {
		name, file, text, diffID string
	}{
		{"yaml", "kiln.yml", "from: scratch\nsteps:\n  - copy: {src: files, dst: /app/}\n",
			"sha256:2306d054400ca2fff390098bc5f86e712cb58d4571ce9a998a787f5f9dfb9812"},
		{"yaml-mode-owner", "kiln.yml", "from: scratch\nsteps:\n  - copy: {src: files, dst: /app/, mode: \"0640\", owner: \"1000:1001\"}\n",
			"sha256:400a764403d39e322c7a762a7c153f1cc4eb2942e5a4c615de6635b542a5799e"},
		{"dockerfile", "Dockerfile", "FROM scratch\nCOPY --chown=7:8 --chmod=0755 files /y/\nCOPY files/d1 files/d2 /z/\n",
			"sha256:1f106210c6482f8f93ff881ce2f12f2ec067881b93f700e2291364f777741b77 sha256:b9e7f50262b9689e69deda9927a05856ac50642c7929a02af57561271ac3e1c0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := filepath.Join(manifests, tc.name, tc.file)
			if err := os.MkdirAll(filepath.Dir(m), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(m, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			mustKiln(t, root, "build", "-f", m, "-t", tc.name, ctx)
			in := inspectJSON(t, root, tc.name)
			var got []string
			for _, l := range in.Layers {
				got = append(got, l.DiffID)
			}
			if strings.Join(got, " ") != tc.diffID {
				t.Errorf("copy layers' diffIDs %v, want %s", got, tc.diffID)
			}
		})
	}
}
