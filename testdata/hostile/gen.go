//go:build ignore

// gen.go writes the hostile layer tars of this directory, which the
// tests of image/layer (Extract) and image/store (LayerDir) both unpack:
//
//	go run testdata/hostile/gen.go
//
// Each is a tar a registry or a base image could serve; none depends on
// where the test runs. Running it again writes the same bytes.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type entry struct {
	name string
	typ  byte
	data string
	size int64 // when not 0, the size the header claims; the tar ends after data
}

var fixtures = map[string][]entry{
	// A name climbing out of the layer directory.
	"dotdot.tar": {{name: "../../../sentinel/x", typ: tar.TypeReg, data: "pwned"}},
	// A whiteout of "..": would delete the directory above.
	"whiteout-dotdot.tar": {{name: "d/", typ: tar.TypeDir}, {name: "d/.wh...", typ: tar.TypeReg}},
	// A header claiming 10 GiB followed by five bytes, then nothing: a
	// truncated download, or a lie to fill the disk.
	"short-body.tar": {{name: "big", typ: tar.TypeReg, data: "short", size: 10 << 30}},
	// A path of 4201 bytes, past PATH_MAX.
	"path-max.tar": {{name: strings.Repeat("d/", 2100) + "f", typ: tar.TypeReg, data: "deep"}},
}

func main() {
	dir := filepath.Join("testdata", "hostile")
	for name, entries := range fixtures {
		b, err := write(entries)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen.go: writing %s: %v\n", name, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "gen.go: %v\n", err)
			os.Exit(1)
		}
	}
}

func write(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := int64(0o644)
		if e.typ == tar.TypeDir {
			mode = 0o755
		}
		size := int64(len(e.data))
		if e.size != 0 {
			size = e.size
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Size: size, ModTime: time.Unix(0, 0)}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			return nil, err
		}
		if e.size > int64(len(e.data)) {
			return buf.Bytes(), nil // the rest never comes
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
