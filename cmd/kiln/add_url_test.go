package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// TestAddURL builds a Dockerfile whose ADD downloads files from a server
// on 127.0.0.1: the checksum is verified, files get mode 0600, a changed
// download re-runs the step, and a wrong checksum fails at its line.
func TestAddURL(t *testing.T) {
	enginetest.RequireRoot(t)
	var body atomic.Value
	body.Store("version one\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/dl/tool.sh":
			fmt.Fprint(w, "#!/bin/sh\necho tool\n")
		case "/data.txt":
			w.Header().Set("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT")
			fmt.Fprint(w, body.Load().(string))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte("#!/bin/sh\necho tool\n"))
	checksum := "sha256:" + hex.EncodeToString(sum[:])

	root := newRoot(t)
	mustKiln(t, root, "import", enginetest.Busybox(t), "-t", "busybox", "--cmd", "/bin/sh")
	dir := t.TempDir()
	write := func(df string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	df := "FROM busybox\n" +
		"ADD --checksum=" + checksum + " " + srv.URL + "/dl/tool.sh /usr/local/bin/\n" +
		"ADD " + srv.URL + "/data.txt /data/\n" +
		"RUN stat -c '%a %Y' /data/data.txt /usr/local/bin/tool.sh > /modes\n" +
		"CMD [\"sh\", \"-c\", \"cat /data/data.txt /modes; sh /usr/local/bin/tool.sh\"]\n"
	write(df)
	mustKiln(t, root, "build", "-t", "dl", dir)
	want := "version one\n600 1700000000\n600 0\ntool\n"
	if got := mustKiln(t, root, "run", "dl").stdout; got != want {
		t.Errorf("the image printed %q, want %q", got, want)
	}

	// The download's content is part of the key: a new version re-runs.
	body.Store("version two\n")
	mustKiln(t, root, "build", "-t", "dl", dir)
	if got := mustKiln(t, root, "run", "dl").stdout; !strings.HasPrefix(got, "version two\n") {
		t.Errorf("after the server's file changed the image printed %q", got)
	}

	write(strings.Replace(df, checksum, "sha256:"+strings.Repeat("0", 64), 1))
	r := kiln(t, root, nil, "build", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "checksum mismatch") || !strings.Contains(r.stderr, "Dockerfile:2") {
		t.Errorf("a wrong checksum: exit %d, stderr %q", r.code, r.stderr)
	}
	write("FROM busybox\nADD " + srv.URL + "/missing /x\n")
	if r := kiln(t, root, nil, "build", dir); r.code == 0 || !strings.Contains(r.stderr, "404") {
		t.Errorf("a missing URL: exit %d, stderr %q", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) > 0 {
		t.Errorf("downloads left in the root's tmp: %d entries", len(entries))
	}
}
