package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// UserCertsDir returns the user's directory of per-registry CA
// certificates, where kiln login --ca-file keeps a CA:
// $XDG_CONFIG_HOME/kiln/certs.d, else ~/.config/kiln/certs.d.
func UserCertsDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the certificates directory: %w", err)
	}
	return filepath.Join(dir, "kiln", "certs.d"), nil
}

// DefaultCertDirs returns the directories of per-registry CA certificates
// that kiln reads, as Docker and Podman lay them out (DIR/HOST[:PORT]/*.crt):
// /etc/docker/certs.d, /etc/containers/certs.d and UserCertsDir.
func DefaultCertDirs() []string {
	dirs := []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}
	if d, err := UserCertsDir(); err == nil {
		dirs = append(dirs, d)
	}
	return dirs
}

// SaveCA keeps the PEM CA certificates of caFile as the CA of host
// ("name[:port]"), in UserCertsDir()/host/ca.crt, and returns that path.
func SaveCA(host, caFile string) (string, error) {
	if !validHostDir(host) {
		return "", fmt.Errorf("saving the CA of %q: not a registry host", host)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("saving the CA of %s: %w", host, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return "", fmt.Errorf("saving the CA of %s: no PEM certificate in %s", host, caFile)
	}
	dir, err := UserCertsDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, host, "ca.crt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("saving the CA of %s: %w", host, err)
	}
	if err := atomicfile.Write(p, b, 0o644, nil); err != nil {
		return "", fmt.Errorf("saving the CA of %s: %w", host, err)
	}
	return p, nil
}

// validHostDir reports whether host can name a directory of a certs.d:
// one path component.
func validHostDir(host string) bool {
	return host != "" && host != "." && host != ".." && !strings.ContainsAny(host, "/\\\x00")
}

// hostCAs returns the PEM of every *.crt file (a regular file, or a link
// to one) in DIR/host of dirs, by path.
func hostCAs(dirs []string, host string) (map[string][]byte, error) {
	if !validHostDir(host) {
		return nil, nil
	}
	out := map[string][]byte{}
	for _, d := range dirs {
		dir := filepath.Join(d, host)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificates of %s: %w", host, err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".crt") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				return nil, fmt.Errorf("reading the CA certificates of %s: %s is not a regular file", host, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading the CA certificates of %s: %w", host, err)
			}
			out[p] = b
		}
	}
	return out, nil
}

// certsTransport sends each request through base, with the CA
// certificates of the request's host in dirs (see DefaultCertDirs) added
// to the pool base trusts.
type certsTransport struct {
	base *http.Transport
	pool *x509.CertPool // base's
	dirs []string

	mu    sync.Mutex
	hosts map[string]http.RoundTripper // read once per host
}

func (t *certsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt, err := t.forHost(r.URL.Host)
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(r)
}

// forHost returns the transport for host: base, or a clone of it that
// also trusts the host's certificates.
func (t *certsTransport) forHost(host string) (http.RoundTripper, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rt, ok := t.hosts[host]; ok {
		return rt, nil
	}
	cas, err := hostCAs(t.dirs, host)
	if err != nil {
		return nil, err
	}
	var rt http.RoundTripper = t.base
	if len(cas) > 0 {
		pool := t.pool.Clone()
		for p, pem := range cas {
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("reading the CA certificates of %s: no PEM certificate in %s", host, p)
			}
		}
		tr := t.base.Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		rt = tr
	}
	if t.hosts == nil {
		t.hosts = map[string]http.RoundTripper{}
	}
	t.hosts[host] = rt
	return rt, nil
}
