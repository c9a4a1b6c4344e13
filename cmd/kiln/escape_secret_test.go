package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestEscapeSecretAtRest SIGKILLs kiln while a step that mounts a secret
// runs: the secret's value is then in no file under kiln's root, TMPDIR
// or the test's directories. A secret lives in memory only (a tmpfs of
// the step's own mount namespace), never on disk.
func TestEscapeSecretAtRest(t *testing.T) {
	root := buildRoot(t)
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	secret := "kiln-secret-" + hex.EncodeToString(b)
	t.Setenv("KILN_TEST_SECRET", secret)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
		// The in-memory file keeps the mode and owner asked for.
		"RUN --mount=type=secret,id=tok,uid=1000,gid=1001,mode=0440 sh -c 'test \"$(stat -c %u:%g:%a /run/secrets/tok)\" = 1000:1001:440'\n" +
		"RUN --mount=type=secret,id=tok,required=true sh -c 'test -s /run/secrets/tok && echo mounted-$(wc -c </run/secrets/tok); sleep 30'\n"})
	start := time.Now()
	k := startKiln(t, root, "build", "--progress", "plain", "--secret", "id=tok,env=KILN_TEST_SECRET", dir)
	k.waitOutput(t, "mounted-", 15*time.Second)
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-k.done
	// The step's processes die with kiln (PDEATHSIG).
	time.Sleep(500 * time.Millisecond)

	for _, d := range []string{root, os.TempDir(), filepath.Dir(root), dir} {
		if p := fileHolding(t, d, []byte(secret), start); p != "" {
			t.Errorf("the secret's value is on disk after kiln was killed: %s", p)
		}
	}
	// The next kiln sweeps what the killed one left, for newRoot's check.
	mustKiln(t, root, "run", "busybox", "--", "true")
}

// fileHolding returns a regular file under dir, changed since since,
// that contains s, or "". Other files and unreadable ones are passed
// over: a file holding the secret was written after since.
func fileHolding(t *testing.T, dir string, s []byte, since time.Time) string {
	t.Helper()
	var found string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return nil
		}
		if d.IsDir() {
			// Pseudo file systems never hold a file written to disk.
			var st syscall.Statfs_t
			if syscall.Statfs(p, &st) == nil && (st.Type == 0x9fa0 || st.Type == 0x62656572) { // proc, sysfs
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.ModTime().Before(since.Add(-time.Second)) || fi.Size() > 64<<20 {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, s) {
			found = p
		}
		return nil
	})
	return found
}
