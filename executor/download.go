package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/manifest"
)

// downloaded is what an ADD of URLs fetched, in a directory of its own.
type downloaded struct {
	dir    string
	names  []string // file names in dir, in the order of the URLs
	hashes []string // sha256 of each, "sha256:…"
}

// download fetches the URLs of a copy step once per build, checks their
// checksums, and keeps them until the step ends (dropDownloads).
func (r *run) download(ctx context.Context, n *dag.Node, urls []manifest.URLSource) (*downloaded, error) {
	r.mu.Lock()
	if d, ok := r.downloads[n]; ok {
		r.mu.Unlock()
		return d, nil
	}
	r.mu.Unlock()
	if err := os.MkdirAll(r.opts.Tmp, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(r.opts.Tmp, tmpPrefix("add"))
	if err != nil {
		return nil, err
	}
	d := &downloaded{dir: dir}
	for _, u := range urls {
		name, sum, err := fetch(ctx, u, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		d.names = append(d.names, name)
		d.hashes = append(d.hashes, sum)
	}
	r.mu.Lock()
	r.downloads[n] = d
	r.mu.Unlock()
	return d, nil
}

// dropDownloads removes what n downloaded.
func (r *run) dropDownloads(n *dag.Node) {
	r.mu.Lock()
	d := r.downloads[n]
	delete(r.downloads, n)
	r.mu.Unlock()
	if d != nil {
		os.RemoveAll(d.dir)
	}
}

// fetch downloads u into dir, under the last element of its path, with
// mode 0600 and the Last-Modified time, as Docker's ADD does.
func fetch(ctx context.Context, u manifest.URLSource, dir string) (name, sum string, err error) {
	parsed, err := url.Parse(u.URL)
	if err != nil {
		return "", "", fmt.Errorf("ADD %s: %w", u.URL, err)
	}
	name = path.Base(parsed.Path)
	if name == "/" || name == "." || name == "" {
		return "", "", fmt.Errorf("ADD %s: the URL has no file name (give one in the destination path)", u.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		return "", "", fmt.Errorf("ADD %s: %w", u.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("ADD %s: %w", u.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("ADD %s: the server answered %s", u.URL, resp.Status)
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", fmt.Errorf("ADD %s: two URLs named %s: %w", u.URL, name, err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), resp.Body); err != nil {
		f.Close()
		return "", "", fmt.Errorf("ADD %s: downloading: %w", u.URL, err)
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
	if u.Checksum != "" && !strings.EqualFold(u.Checksum, sum) {
		return "", "", fmt.Errorf("ADD %s: checksum mismatch: got %s, want %s", u.URL, sum, u.Checksum)
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		_ = os.Chtimes(p, lm, lm)
	} else {
		_ = os.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0))
	}
	return name, sum, nil
}

// tmpPrefix names a temp directory under the kiln root's tmp/ by this
// process, "<pid>-what-", so that the store's sweep removes it after a
// crash, as it removes its own temp files.
func tmpPrefix(what string) string {
	return strconv.Itoa(os.Getpid()) + "-" + what + "-"
}
