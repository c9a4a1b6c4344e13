package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// dockerRegistry is Debian's docker-registry (distribution 2.8) serving
// TLS on 127.0.0.1 with a CA made for the test, htpasswd basic auth and an
// access log.
type dockerRegistry struct {
	host     string // 127.0.0.1:port
	caFile   string // PEM of the CA that signed the server's certificate
	certDir  string // the CA as ca.crt, for skopeo's --cert-dir
	user     string
	password string
	log      string // the registry's log file
	client   *http.Client
}

// startDockerRegistry starts docker-registry, skipping the test when it
// is not installed, and stops it when the test ends.
func startDockerRegistry(t *testing.T) *dockerRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("skipping: docker-registry is not installed (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	r := &dockerRegistry{user: "alice", password: "s3cret-pw", log: filepath.Join(dir, "registry.log"), certDir: filepath.Join(dir, "certs")}
	r.caFile = filepath.Join(r.certDir, "ca.crt")
	caCert, certPEM, keyPEM := makeCerts(t)
	if err := os.MkdirAll(r.certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	r.host = fmt.Sprintf("127.0.0.1:%d", port)
	config := fmt.Sprintf(`version: 0.1
log:
  level: debug
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %[1]s/data
http:
  addr: %[2]s
  tls:
    certificate: %[1]s/server.crt
    key: %[1]s/server.key
auth:
  htpasswd:
    realm: kiln-test
    path: %[1]s/htpasswd
`, dir, r.host)
	for name, content := range map[string][]byte{
		r.caFile:                         caCert,
		filepath.Join(dir, "server.crt"): certPEM,
		filepath.Join(dir, "server.key"): keyPEM,
		filepath.Join(dir, "htpasswd"):   fmt.Appendf(nil, "%s:%s\n", r.user, hash),
		filepath.Join(dir, "config.yml"): []byte(config),
	} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logFile, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("docker-registry log (last 3000 bytes):\n%s", b[max(0, len(b)-3000):])
		}
	})

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caCert)
	r.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := r.client.Get("https://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("docker-registry answered GET /v2/ without credentials with %s, want 401", resp.Status)
			}
			return r
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("docker-registry did not come up on %s: %v\n%s", r.host, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// makeCerts returns a new CA certificate, and a server certificate for
// the IP address 127.0.0.1 that it signed with its key, all as PEM.
func makeCerts(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kiln test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// blobUploadLine matches the access log lines of requests that upload a
// blob: starting, continuing or completing an upload.
var blobUploadLine = regexp.MustCompile(`"(POST|PATCH|PUT) /v2/[^ "]*/blobs/uploads/`)

// blobUploads returns how many blob upload requests the registry has
// logged (see accessLog).
func (r *dockerRegistry) blobUploads(t *testing.T) int {
	t.Helper()
	return len(blobUploadLine.FindAllString(r.accessLog(t), -1))
}

// accessLog returns the registry's log. It first sends a marker request
// and waits for its log line, so that every request answered before the
// call is in it.
func (r *dockerRegistry) accessLog(t *testing.T) string {
	t.Helper()
	marker := fmt.Sprintf("/v2/?marker=%d", time.Now().UnixNano())
	resp, err := r.client.Get("https://" + r.host + marker)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		b, err := os.ReadFile(r.log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "GET "+marker+" ") {
			return string(b)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the registry did not log the marker request %s", marker)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
