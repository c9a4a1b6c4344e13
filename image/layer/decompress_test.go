package layer

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestDecompress(t *testing.T) {
	const want = "a tar, or anything else"
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write([]byte(want))
	gw.Close()
	zw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte(want))
	zw.Close()
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"gzip", gz.Bytes()},
		{"zstd", zs.Bytes()},
		{"uncompressed", []byte(want)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tc.blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || string(got) != want {
				t.Errorf("read %q, %v; want %q", got, err, want)
			}
		})
	}
	if _, err := Decompress(bytes.NewReader([]byte("\x1f\x8bnot gzip"))); err == nil {
		t.Error("a broken gzip header was accepted")
	}
}
