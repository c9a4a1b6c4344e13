package cache

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/image/store"
)

func newCache(t *testing.T) (*store.Store, *Cache) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// writeLayer stores a layer holding one file, name, whose content is name,
// and returns a record of it under key.
func writeLayer(t *testing.T, s *store.Store, key Key, name string) Record {
	t.Helper()
	l, err := s.WriteLayer(context.Background(), func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(name)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(name)); err != nil {
			return err
		}
		return tw.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	diffID, _ := l.DiffID()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	return Record{
		Key:     key,
		Layer:   v1.Descriptor{MediaType: mt, Size: size, Digest: d},
		DiffID:  diffID,
		Created: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Step:    "run: echo " + name,
	}
}

func blobPath(s *store.Store, d v1.Hash) string {
	return filepath.Join(s.Root(), "oci", "blobs", d.Algorithm, d.Hex)
}

func keyOf(s string) Key { return ComputeKey(KeyInput{Kind: "run", Args: []string{s}}) }

// tarNames lists the names in the tar that r reads.
func tarNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	want := writeLayer(t, s, keyOf("a"), "hello")
	if err := c.Put(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, l, err := c.Get(ctx, want.Key)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get record (-want +got):\n%s", diff)
	}
	d, _ := l.Digest()
	diffID, _ := l.DiffID()
	size, _ := l.Size()
	mt, _ := l.MediaType()
	if diff := cmp.Diff(want.Layer, v1.Descriptor{MediaType: mt, Size: size, Digest: d}); diff != "" {
		t.Errorf("layer descriptor (-want +got):\n%s", diff)
	}
	if diffID != want.DiffID {
		t.Errorf("layer DiffID = %s, want %s", diffID, want.DiffID)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if diff := cmp.Diff([]string{"hello"}, tarNames(t, rc)); diff != "" {
		t.Errorf("layer content (-want +got):\n%s", diff)
	}
	if err := c.Verify(ctx, want.Key); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// Another Cache on the root sees it, and Delete removes it.
	c2, err := Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c2.Get(ctx, want.Key); err != nil {
		t.Errorf("Get from a second Cache: %v", err)
	}
	if err := c2.Delete(ctx, want.Key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx, want.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "refs", "cache", want.Key.String())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("store reference after Delete: %v, want it gone", err)
	}
}

func TestGetMissing(t *testing.T) {
	_, c := newCache(t)
	_, _, err := c.Get(context.Background(), keyOf("nothing"))
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

// TestGetUnusable covers records that exist but must not be used.
func TestGetUnusable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, s *store.Store, c *Cache, r Record)
		want   string // in the error
	}{
		{"blob removed", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			if err := os.Remove(blobPath(s, r.Layer.Digest)); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
		{"blob truncated", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			if err := os.Truncate(blobPath(s, r.Layer.Digest), r.Layer.Size-1); err != nil {
				t.Fatal(err)
			}
		}, "bytes, want"},
		{"record garbage", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			if err := os.WriteFile(c.recordPath(r.Key), []byte(`{"key": "ab`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "unexpected end of JSON"},
		{"record of another key", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			b, err := os.ReadFile(c.recordPath(r.Key))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(r.Key.String()), []byte(keyOf("other").String()), 1)
			if err := os.WriteFile(c.recordPath(r.Key), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "holds key " + keyOf("other").String()},
		{"record with a bad digest", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			b, err := os.ReadFile(c.recordPath(r.Key))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(r.Layer.Digest.Hex), []byte("../../../../etc/passwd"), 1)
			if err := os.WriteFile(c.recordPath(r.Key), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "non-hex character"},
		{"record without a diffID", func(t *testing.T, s *store.Store, c *Cache, r Record) {
			b, err := os.ReadFile(c.recordPath(r.Key))
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte(`"diffID"`), []byte(`"unknown"`), 1)
			if err := os.WriteFile(c.recordPath(r.Key), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "diffID digest is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, c := newCache(t)
			r := writeLayer(t, s, keyOf(tc.name), "x")
			if err := c.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, s, c, r)
			_, _, err := c.Get(ctx, r.Key)
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
				t.Fatalf("Get: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Get: %v, want it to mention %q", err, tc.want)
			}
			if err := c.Verify(ctx, r.Key); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Verify: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestGetChangedBlob: a blob whose bytes changed (same size) is found by Get
// but fails, naming the digest, when read.
func TestGetChangedBlob(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	r := writeLayer(t, s, keyOf("changed"), "some content that is long enough")
	if err := c.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	p := blobPath(s, r.Layer.Digest)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, l, err := c.Get(ctx, r.Key)
	if err != nil {
		t.Fatal(err) // the size still matches: only reading finds the change
	}
	for _, open := range []struct {
		name string
		f    func() (io.ReadCloser, error)
	}{{"Compressed", l.Compressed}, {"Uncompressed", l.Uncompressed}} {
		rc, err := open.f()
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("reading %s: %v, want ErrCorrupt", open.name, err)
		}
		if err == nil || !strings.Contains(err.Error(), r.Layer.Digest.String()) {
			t.Errorf("reading %s: %v, want an error naming %s", open.name, err, r.Layer.Digest)
		}
	}
	if err := c.Verify(ctx, r.Key); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify: %v, want ErrCorrupt", err)
	}
}

func TestPutNeedsBlob(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	r := writeLayer(t, s, keyOf("gone"), "x")
	if err := os.Remove(blobPath(s, r.Layer.Digest)); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, r); err == nil || !strings.Contains(err.Error(), "not in the store") {
		t.Errorf("Put without its blob: %v, want a not in the store error", err)
	}
	if _, _, err := c.Get(ctx, r.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after a failed Put: %v, want ErrNotFound", err)
	}
	bad := writeLayer(t, s, keyOf("bad"), "y")
	bad.Layer.MediaType = ""
	if err := c.Put(ctx, bad); err == nil {
		t.Error("Put without a media type: no error")
	}
}

// deadPid returns the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestTornTempIgnoredAndSwept(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	r := writeLayer(t, s, keyOf("torn"), "x")
	if err := c.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile(c.recordPath(r.Key))
	if err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(c.recordsDir(), tmpPrefix+strconv.Itoa(deadPid(t))+"-0123abcd")
	live := filepath.Join(c.recordsDir(), tmpPrefix+strconv.Itoa(os.Getpid())+"-0123abcd")
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, rec[:len(rec)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Get(ctx, r.Key); err != nil {
		t.Errorf("Get beside torn temp files: %v", err)
	}
	if _, err := Open(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file of a dead process after Open: %v, want it removed", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("temp file of a running process after Open: %v, want it kept", err)
	}
	if _, _, err := c.Get(ctx, r.Key); err != nil {
		t.Errorf("Get after the sweep: %v", err)
	}
}

func TestConcurrentPut(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	var records []Record
	for i := range 8 {
		records = append(records, writeLayer(t, s, keyOf(strconv.Itoa(i)), fmt.Sprintf("file%d", i%3)))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(records))
	for i, r := range records {
		wg.Go(func() {
			cc := c
			if i%2 == 1 { // half on a Cache of their own
				var err error
				if cc, err = Open(ctx, s); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = cc.Put(ctx, r)
		})
	}
	wg.Wait()
	for i, r := range records {
		if errs[i] != nil {
			t.Errorf("Put %d: %v", i, errs[i])
			continue
		}
		got, _, err := c.Get(ctx, r.Key)
		if err != nil {
			t.Errorf("Get %d: %v", i, err)
			continue
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("Get %d (-want +got):\n%s", i, diff)
		}
	}
	entries, err := os.ReadDir(c.recordsDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("temp file %s left after Put", e.Name())
		}
	}
}

// TestCollectionKeepsCachedBlob: removing an unrelated image collects old
// unreferenced blobs, but not the blob of a cache record.
func TestCollectionKeepsCachedBlob(t *testing.T) {
	ctx := context.Background()
	s, c := newCache(t)
	r := writeLayer(t, s, keyOf("kept"), "kept")
	if err := c.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	loose := writeLayer(t, s, keyOf("loose"), "loose") // never Put: collectable

	l, err := s.WriteLayer(ctx, func(w io.Writer) error { return tar.NewWriter(w).Close() })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tag(ctx, img, "unrelated:1"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * store.GCGrace)
	for _, d := range []v1.Hash{r.Layer.Digest, loose.Layer.Digest} {
		if err := os.Chtimes(blobPath(s, d), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Remove(ctx, "unrelated:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blobPath(s, loose.Layer.Digest)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an old unreferenced blob survived the collection (%v): the test proves nothing", err)
	}
	if _, err := os.Stat(blobPath(s, r.Layer.Digest)); err != nil {
		t.Errorf("the cached layer's blob was collected: %v", err)
	}
	if err := c.Verify(ctx, r.Key); err != nil {
		t.Errorf("Verify after the collection: %v", err)
	}
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	s, c1 := newCache(t)
	c2, err := Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	k := keyOf("locked")
	unlock1, err := c1.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	acquired := make(chan struct{})
	released := make(chan struct{}) // the second lock's unlock returned
	go func() {
		defer close(released)
		unlock2, err := c2.Lock(ctx, k)
		if err != nil {
			t.Error(err)
			close(acquired)
			return
		}
		record("second acquired")
		close(acquired)
		unlock2()
	}()
	select {
	case <-acquired:
		t.Fatal("the second Lock acquired a held lock")
	case <-time.After(150 * time.Millisecond):
	}
	// Another key is not blocked by it.
	unlockOther, err := c2.Lock(ctx, keyOf("other"))
	if err != nil {
		t.Fatal(err)
	}
	unlockOther()
	record("first released")
	unlock1()
	select {
	case <-acquired:
	case <-time.After(5 * time.Second):
		t.Fatal("the second Lock did not acquire after the first was released")
	}
	if diff := cmp.Diff([]string{"first released", "second acquired"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	<-released
	entries, err := os.ReadDir(c1.locksDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("lock files left after unlocking: %v", entries)
	}
}

func TestLockCancel(t *testing.T) {
	ctx := context.Background()
	_, c := newCache(t)
	k := keyOf("held")
	unlock, err := c.Lock(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Lock(tctx, k); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock of a held key with a deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock returned %v after its deadline", d)
	}
}

// TestLockProcesses: a lock held by another process blocks until that
// process releases it, and the lock of a killed process is free.
func TestLockProcesses(t *testing.T) {
	if os.Getenv("KILN_CACHE_LOCK_HELPER") != "" {
		lockHelper()
		return
	}
	ctx := context.Background()
	s, c := newCache(t)
	k := keyOf("shared")
	for _, end := range []string{"release", "kill"} {
		t.Run(end, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLockProcesses$")
			cmd.Env = append(os.Environ(), "KILN_CACHE_LOCK_HELPER="+s.Root()+"|"+k.String())
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || line != "locked\n" {
				cmd.Process.Kill()
				t.Fatalf("helper: %q, %v", line, err)
			}
			tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if _, err := c.Lock(tctx, k); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Lock while another process holds it: %v, want DeadlineExceeded", err)
			}
			if end == "kill" {
				cmd.Process.Kill()
			} else {
				stdin.Close()
			}
			tctx, cancel = context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			unlock, err := c.Lock(tctx, k)
			if err != nil {
				t.Fatalf("Lock after the other process ended (%s): %v", end, err)
			}
			unlock()
		})
	}
}

// lockHelper locks the key named by $KILN_CACHE_LOCK_HELPER, says so on
// stdout and holds the lock until stdin closes.
func lockHelper() {
	root, key, _ := strings.Cut(os.Getenv("KILN_CACHE_LOCK_HELPER"), "|")
	ctx := context.Background()
	s, err := store.Open(ctx, root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c, err := Open(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k, err := ParseKey(key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	unlock, err := c.Lock(ctx, k)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	unlock()
	os.Exit(0)
}
