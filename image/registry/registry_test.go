package registry

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fastBackoff keeps the retry tests quick: 4 retries within 20ms.
var fastBackoff = remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 5}

// newRegistry starts go-containerregistry's in-memory registry behind
// middle, which may answer a request itself (returning true) or let it
// through, and returns its host:port.
func newRegistry(t *testing.T, middle func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if middle != nil && middle(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// newClient returns a client with fastBackoff and anonymous credentials.
func newClient(t *testing.T, o Options) *Client {
	t.Helper()
	if o.Backoff == nil {
		o.Backoff = &fastBackoff
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain() // anonymous
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomImage(t *testing.T, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(1024, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushAndCheck pushes img to host/test/img:1 and checks that the registry
// has it.
func pushAndCheck(t *testing.T, c *Client, host string, img v1.Image) error {
	t.Helper()
	ref, err := c.Reference(host + "/test/img:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Push(t.Context(), img, ref); err != nil {
		return err
	}
	got, err := c.Head(t.Context(), ref)
	if err != nil {
		t.Fatalf("head after push: %v", err)
	}
	if want, _ := img.Digest(); got.Digest != want {
		t.Errorf("the registry has digest %s, want %s", got.Digest, want)
	}
	return nil
}

// TestPushRetry makes the registry fail the first requests of one kind with
// 503, or break their connection, and checks that the push still works;
// and that it fails, with the registry and the status named, when the
// failures do not stop.
func TestPushRetry(t *testing.T) {
	isPing := func(r *http.Request) bool { return r.URL.Path == "/v2/" }
	isUploadStart := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/")
	}
	isBlobHead := func(r *http.Request) bool {
		return r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/")
	}
	isManifestPut := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
	}
	status503 := func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }
	reset := func(w http.ResponseWriter) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.(*net.TCPConn).SetLinger(0) // close with a RST
		conn.Close()
	}
	tests := []struct {
		name     string
		match    func(*http.Request) bool
		fail     func(http.ResponseWriter)
		failures int64
		wantErr  string
	}{
		{name: "503 on ping", match: isPing, fail: status503, failures: 2},
		{name: "503 on blob upload", match: isUploadStart, fail: status503, failures: 2},
		{name: "503 on manifest put", match: isManifestPut, fail: status503, failures: 2},
		{name: "connection reset on blob check", match: isBlobHead, fail: reset, failures: 2},
		{name: "503 for ever", match: isUploadStart, fail: status503, failures: 1000,
			wantErr: "registry error (503 Service Unavailable), still after retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failed atomic.Int64
			host := newRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
				if tt.match(r) && failed.Add(1) <= tt.failures {
					tt.fail(w)
					return true
				}
				return false
			})
			err := pushAndCheck(t, newClient(t, Options{}), host, randomImage(t, 2))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("push after %d failures: %v", tt.failures, err)
				}
				if n := failed.Load(); n < tt.failures {
					t.Errorf("the registry failed %d requests, want %d: the test did not test retries", n, tt.failures)
				}
				return
			}
			if err == nil {
				t.Fatal("push succeeded, want an error")
			}
			var re *Error
			if !errors.As(err, &re) || re.Status != http.StatusServiceUnavailable {
				t.Errorf("error %v (%T), want an *Error with status 503", err, err)
			}
			if want := host + ": " + tt.wantErr; err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
		})
	}
}

// TestPushUploadsOnlyMissingBlobs pushes an image twice, and a second image
// sharing all but one layer: the registry is asked whether it has each
// blob, and only the missing ones are uploaded. The uploads of the first
// push overlap.
func TestPushUploadsOnlyMissingBlobs(t *testing.T) {
	var uploads, heads, inFlight, maxInFlight atomic.Int64
	var mu sync.Mutex
	host := newRegistry(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/"):
			heads.Add(1)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/"):
			uploads.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			mu.Lock()
			maxInFlight.Store(max(maxInFlight.Load(), n))
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // let the other uploads start
		}
		return false
	})
	c := newClient(t, Options{Jobs: 4})
	img := randomImage(t, 6)
	if err := pushAndCheck(t, c, host, img); err != nil {
		t.Fatal(err)
	}
	if got, want := uploads.Load(), int64(7); got != want { // 6 layers and the config
		t.Errorf("first push: %d blob uploads, want %d", got, want)
	}
	if got := maxInFlight.Load(); got < 2 {
		t.Errorf("first push: at most %d upload at a time, want them in parallel", got)
	}
	uploads.Store(0)
	if err := pushAndCheck(t, c, host, img); err != nil {
		t.Fatal(err)
	}
	if got := uploads.Load(); got != 0 {
		t.Errorf("second push of the same image: %d blob uploads, want none", got)
	}

	// An image with one more layer: its new layer and config go up, the
	// other layers are only checked.
	extra, err := random.Layer(1024, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	bigger, err := mutate.AppendLayers(img, extra)
	if err != nil {
		t.Fatal(err)
	}
	uploads.Store(0)
	heads.Store(0)
	if err := pushAndCheck(t, c, host, bigger); err != nil {
		t.Fatal(err)
	}
	if got, want := uploads.Load(), int64(2); got != want {
		t.Errorf("push of an image with one more layer: %d blob uploads, want %d (the layer and the config)", got, want)
	}
	if got, want := heads.Load(), int64(8); got != want {
		t.Errorf("push of an image with one more layer: %d blob HEAD requests, want %d", got, want)
	}
}

// basicAuth answers 401 with a Basic challenge to requests without the
// credentials user:password.
func basicAuth(user, password string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == user && p == password {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
}

// TestLogin checks credentials against a registry with basic
// authentication, saves them to the Docker config file, pushes with them
// through the default keychain, and removes them.
func TestLogin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", dir)
	host := newRegistry(t, basicAuth("alice", "s3cret"))
	c := newClient(t, Options{Keychain: authn.DefaultKeychain})
	reg, err := c.Registry(host)
	if err != nil {
		t.Fatal(err)
	}

	err = c.CheckLogin(t.Context(), reg, "alice", "wrong")
	if want := host + ": authentication failed (401 Unauthorized): wrong user name or password"; err == nil || err.Error() != want {
		t.Errorf("CheckLogin with a wrong password: %v, want %s", err, want)
	}
	if err := pushAndCheck(t, c, host, randomImage(t, 1)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("push before login: %v, want a 401 error", err)
	}
	if err := c.CheckLogin(t.Context(), reg, "alice", "s3cret"); err != nil {
		t.Fatalf("CheckLogin with the right password: %v", err)
	}
	path, err := SaveLogin(reg, "alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "config.json"); path != want {
		t.Errorf("SaveLogin wrote %s, want %s", path, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	if got, want := readAuths(t, path), map[string]string{host: base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}; !cmp.Equal(want, got) {
		t.Errorf("auths of %s (-want +got):\n%s", path, cmp.Diff(want, got))
	}
	if err := pushAndCheck(t, c, host, randomImage(t, 1)); err != nil {
		t.Errorf("push after login: %v", err)
	}

	if _, err := RemoveLogin(reg); err != nil {
		t.Fatal(err)
	}
	if got := readAuths(t, path); len(got) != 0 {
		t.Errorf("after RemoveLogin the config has auths %v", got)
	}
	if _, err := RemoveLogin(reg); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("a second RemoveLogin: %v, want ErrNotLoggedIn", err)
	}
}

// readAuths returns the "auth" of each entry of "auths" of a config file.
func readAuths(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	got := map[string]string{}
	for k, v := range cfg.Auths {
		got[k] = v.Auth
	}
	return got
}

// TestPushTLS pushes to a registry over TLS with a certificate of its own CA:
// without that CA the error says what to do; with --ca-file or
// --insecure-registry the push works.
func TestPushTLS(t *testing.T) {
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewUnstartedServer(reg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes the test provokes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// certs.d directories, as Docker (DIR/HOST:PORT/ca.crt) and Podman
	// (any *.crt) lay them out: a CA there is trusted for that host only.
	write := func(p string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	docker, podman, other, bad := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(filepath.Join(docker, host, "ca.crt"), caPEM)
	write(filepath.Join(podman, host, "registry.crt"), caPEM)
	write(filepath.Join(podman, host, "client.cert"), []byte("not read"))
	write(filepath.Join(other, "127.0.0.1:1", "ca.crt"), caPEM)
	write(filepath.Join(bad, host, "ca.crt"), []byte("garbage"))
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no CA", wantErr: host + ": TLS certificate signed by an unknown authority: pass --ca-file CA.pem, or --insecure-registry HOST to skip verification"},
		{name: "docker certs.d", opts: Options{CertDirs: []string{docker}}},
		{name: "podman certs.d", opts: Options{CertDirs: []string{t.TempDir(), podman}}},
		{name: "no certs.d", opts: Options{CertDirs: []string{}}, wantErr: host + ": TLS certificate signed by an unknown authority"},
		{name: "another host's certs.d", opts: Options{CertDirs: []string{other}}, wantErr: host + ": TLS certificate signed by an unknown authority"},
		{name: "certs.d not PEM", opts: Options{CertDirs: []string{bad}}, wantErr: "no PEM certificate in " + filepath.Join(bad, host, "ca.crt")},
		{name: "CA file", opts: Options{CAFile: ca}},
		{name: "insecure host", opts: Options{Insecure: []string{"127.0.0.1"}}},
		{name: "insecure host:port", opts: Options{Insecure: []string{host}}},
		{name: "another insecure host", opts: Options{Insecure: []string{"127.0.0.1:1"}}, wantErr: host + ": TLS certificate signed by an unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pushAndCheck(t, newClient(t, tt.opts), host, randomImage(t, 1))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("push: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("push: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistryNewRejects(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing CA file", Options{CAFile: "/nonexistent/ca.pem"}, "no such file"},
		{"CA file without PEM", Options{CAFile: garbage}, "no PEM certificate"},
		{"insecure with a path", Options{Insecure: []string{"host/repo"}}, "want HOST or HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRegistryErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"401", &transport.Error{StatusCode: 401}, "r.example:5000: authentication failed (401 Unauthorized): log in with kiln login r.example:5000"},
		{"403", &transport.Error{StatusCode: 403, Errors: []transport.Diagnostic{{Code: transport.DeniedErrorCode, Message: "requested access to the resource is denied"}}},
			"r.example:5000: access denied (403 Forbidden): requested access to the resource is denied"},
		{"404", &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{{Code: transport.ManifestUnknownErrorCode}}},
			"r.example:5000: not found (404 Not Found): MANIFEST_UNKNOWN"},
		{"400", &transport.Error{StatusCode: 400, Errors: []transport.Diagnostic{{Message: "line one\nline two"}}},
			"r.example:5000: 400 Bad Request: line one; line two"},
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
			"r.example:5000: connection refused: is the registry running and the port right?"},
		{"other", errors.New("some\nthing"), "r.example:5000: some; thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe("r.example:5000", tt.err).Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRegistryMatchHost(t *testing.T) {
	hosts := []string{"reg.example", "other.example:5000", "[::1]"}
	tests := []struct {
		host string
		want bool
	}{
		{"reg.example", true},
		{"reg.example:443", true},
		{"other.example:5000", true},
		{"other.example:5001", false},
		{"other.example", false},
		{"[::1]:5000", true},
		{"unrelated.example", false},
	}
	for _, tt := range tests {
		if got := matchHost(hosts, tt.host); got != tt.want {
			t.Errorf("matchHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestRegistryReferenceInsecure(t *testing.T) {
	c := newClient(t, Options{Insecure: []string{"reg.example:5000"}})
	for ref, want := range map[string]string{
		"reg.example:5000/app:1": "http",
		"reg.example/app:1":      "https",
	} {
		r, err := c.Reference(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Scheme(); got != want {
			t.Errorf("%s: scheme %s, want %s", ref, got, want)
		}
	}
	if _, err := c.Reference("UPPER/case"); err == nil {
		t.Error("Reference accepted an invalid name")
	}
	if r, err := c.Registry("https://index.docker.io/v1/"); err != nil || authKey(r) != authn.DefaultAuthKey {
		t.Errorf("Registry of Docker Hub's address: %v, %v, want the key %s", r, err, authn.DefaultAuthKey)
	}
}
