package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/engine/enginetest"
)

// isolateDockerConfig points HOME, XDG_CONFIG_HOME (where kiln keeps the
// CAs of kiln login --ca-file) and DOCKER_CONFIG at empty directories and
// returns the config file kiln login should write.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	dir := filepath.Join(t.TempDir(), "docker")
	t.Setenv("DOCKER_CONFIG", dir)
	return filepath.Join(dir, "config.json")
}

// TestRegistryDockerRegistry runs kiln login, push, pull, run and inspect
// against Debian's docker-registry with TLS (a CA of the test's own) and
// htpasswd basic auth, and checks the push with skopeo.
func TestRegistryDockerRegistry(t *testing.T) {
	enginetest.RequireRoot(t)
	reg := startDockerRegistry(t)
	configFile := isolateDockerConfig(t)
	root := newRoot(t)
	digest := importBusybox(t, root)
	ref := reg.host + "/test/busybox:1"
	ca := "--ca-file=" + reg.caFile

	// Before login, a push fails on one line that names the registry and
	// the 401.
	r := kiln(t, root, nil, "push", "busybox", ref, ca)
	if want := "kiln: pushing " + ref + ": " + reg.host + ": authentication failed (401 Unauthorized): log in with kiln login " + reg.host + "\n"; r.code == 0 || r.stderr != want {
		t.Errorf("push without credentials: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}

	t.Run("login", func(t *testing.T) {
		r := kiln(t, root, strings.NewReader("wrong\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca)
		if want := "kiln: logging in to " + reg.host + ": " + reg.host + ": authentication failed (401 Unauthorized): wrong user name or password\n"; r.code == 0 || r.stderr != want {
			t.Errorf("login with a wrong password: exit %d, stderr %q, want %q", r.code, r.stderr, want)
		}
		if _, err := os.Stat(configFile); !os.IsNotExist(err) {
			t.Errorf("a failed login wrote %s (%v)", configFile, err)
		}
		r = kiln(t, root, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca)
		if r.code != 0 {
			t.Fatalf("login: exit %d, stderr %q", r.code, r.stderr)
		}
		fi, err := os.Stat(configFile)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", configFile, fi.Mode().Perm())
		}
		want := map[string]string{reg.host: base64.StdEncoding.EncodeToString([]byte(reg.user + ":" + reg.password))}
		if diff := cmp.Diff(want, configAuths(t, configFile)); diff != "" {
			t.Errorf("auths of %s (-want +got):\n%s", configFile, diff)
		}
	})

	t.Run("push", func(t *testing.T) {
		before := reg.blobUploads(t)
		r := mustKiln(t, root, "push", "busybox", ref, ca)
		if want := reg.host + "/test/busybox@" + digest + "\n"; r.stdout != want {
			t.Errorf("push printed %q, want %q", r.stdout, want)
		}
		first := reg.blobUploads(t) - before
		if first == 0 {
			t.Fatal("the registry logged no blob upload for the first push")
		}
		mustKiln(t, root, "push", "busybox", ref, ca)
		if n := reg.blobUploads(t) - before - first; n != 0 {
			t.Errorf("the second push made %d blob upload requests, want none", n)
		}
	})

	t.Run("skopeo copy", func(t *testing.T) {
		skopeo := requireTool(t, "skopeo")
		dir := filepath.Join(t.TempDir(), "layout")
		cmd := exec.CommandContext(t.Context(), skopeo, "copy", "--src-cert-dir", reg.certDir, "--src-creds", reg.user+":"+reg.password,
			"docker://"+ref, "oci:"+dir+":copied")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		var index struct{ Manifests []struct{ Digest string } }
		if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
			t.Fatalf("skopeo wrote the index %s (%v)", b, err)
		}
		if got := index.Manifests[0].Digest; got != digest {
			t.Errorf("skopeo copied an image of digest %s, want %s", got, digest)
		}
	})

	t.Run("pull and run", func(t *testing.T) {
		fresh := newRoot(t)
		r := mustKiln(t, fresh, "pull", ref, ca)
		if r.stdout != digest+"\n" {
			t.Errorf("pull printed %q, want %q", r.stdout, digest+"\n")
		}
		r = kiln(t, fresh, nil, "run", ref, "--", "echo", "pulled")
		if r.code != 0 || r.stdout != "pulled\n" {
			t.Errorf("run of the pulled image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		// --insecure-registry instead of the CA, and -t.
		r = mustKiln(t, fresh, "pull", ref, "--insecure-registry", reg.host, "-t", "again")
		if r.stdout != digest+"\n" {
			t.Errorf("pull with --insecure-registry printed %q", r.stdout)
		}
		if r := mustKiln(t, fresh, "images", "-q"); r.stdout != ref+"\nagain:latest\n" {
			t.Errorf("images after two pulls: %q", r.stdout)
		}
		// Without the flag, the CA that login --ca-file kept is trusted;
		// without that either, one line says what to do.
		if r := kiln(t, newRoot(t), nil, "pull", ref); r.code != 0 {
			t.Errorf("pull without --ca-file after login --ca-file: exit %d, stderr %q", r.code, r.stderr)
		}
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		r = kiln(t, newRoot(t), nil, "pull", ref)
		if r.code == 0 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, reg.host+": TLS certificate signed by an unknown authority: pass --ca-file") {
			t.Errorf("pull without the CA: exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("inspect", func(t *testing.T) {
		local := inspectJSON(t, root, "busybox")
		remoteIn := inspectJSON(t, newRoot(t), ref, ca)
		local.Name = ref
		if diff := cmp.Diff(local, remoteIn); diff != "" {
			t.Errorf("inspect of the registry's image against the local one (-local +remote):\n%s", diff)
		}
		if remoteIn.Digest != digest || len(remoteIn.Layers) != 1 || !cmp.Equal(remoteIn.Cmd, []string{"/bin/sh"}) {
			t.Errorf("inspect %s: %+v", ref, remoteIn)
		}
		text := mustKiln(t, newRoot(t), "inspect", ref, ca).stdout
		for _, want := range []string{"Digest:", digest, "Cmd:", `["/bin/sh"]`, "Layers:", remoteIn.Layers[0].Digest, "linux/"} {
			if !strings.Contains(text, want) {
				t.Errorf("inspect text lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("logout", func(t *testing.T) {
		mustKiln(t, root, "logout", reg.host)
		if got := configAuths(t, configFile); len(got) != 0 {
			t.Errorf("after logout the config has auths %v", got)
		}
		r := kiln(t, root, nil, "pull", ref, ca)
		if r.code == 0 || !strings.Contains(r.stderr, "401") {
			t.Errorf("pull after logout: exit %d, stderr %q, want a 401", r.code, r.stderr)
		}
	})
}

// configAuths returns the "auth" of each entry of "auths" of a Docker
// config file.
func configAuths(t *testing.T, path string) map[string]string {
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

// inspectJSON runs kiln inspect --format json and decodes its output.
func inspectJSON(t *testing.T, root string, args ...string) inspection {
	t.Helper()
	r := mustKiln(t, root, append([]string{"inspect", "--format", "json"}, args...)...)
	var in inspection
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect printed %q: %v", r.stdout, err)
	}
	return in
}

// TestInspectLocal inspects an imported image as text and JSON.
func TestInspectLocal(t *testing.T) {
	enginetest.RequireRoot(t)
	root := newRoot(t)
	digest := importBusybox(t, root)
	in := inspectJSON(t, root, "busybox")
	if in.Digest != digest || in.MediaType != string(types.OCIManifestSchema1) || in.OS != "linux" ||
		!cmp.Equal(in.Cmd, []string{"/bin/sh"}) || len(in.Layers) != 1 || in.Layers[0].Size == 0 ||
		!strings.HasPrefix(in.Layers[0].DiffID, "sha256:") || len(in.History) != 1 {
		t.Errorf("inspect --format json busybox: %+v", in)
	}
	text := mustKiln(t, root, "inspect", "busybox").stdout
	for _, want := range []string{"Name:", "busybox", "Digest:", digest, "Media type:", "Platform:", "linux/", "Cmd:", `["/bin/sh"]`, "Layers:", in.Layers[0].Digest, "History:"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, text)
		}
	}
	for _, args := range [][]string{{"inspect", "nosuch"}, {"inspect", "busybox", "--format", "yaml"}} {
		if r := kiln(t, root, nil, args...); r.code == 0 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("kiln %s: exit %d, stderr %q: want a one-line failure", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}

// TestPushCompressionZstd pushes with --compression zstd to an in-process
// registry: the layers there are zstd, the image pulls back and runs, and
// a second push uploads nothing (the recompression is deterministic).
func TestPushCompressionZstd(t *testing.T) {
	enginetest.RequireRoot(t)
	isolateDockerConfig(t)
	root := newRoot(t)
	gzipDigest := importBusybox(t, root)
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/test/zstd:1"

	r := mustKiln(t, root, "push", "busybox", ref, "--compression", "zstd")
	pushed := r.stdout[strings.Index(r.stdout, "@")+1 : len(r.stdout)-1]
	if pushed == gzipDigest {
		t.Errorf("the zstd push kept the gzip image's digest %s", pushed)
	}
	if again := mustKiln(t, root, "push", "busybox", ref, "--compression", "zstd"); again.stdout != r.stdout {
		t.Errorf("a second zstd push printed %q, the first %q", again.stdout, r.stdout)
	}
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(parsed, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayerZStd {
			t.Errorf("a pushed layer has media type %s, want %s", mt, types.OCILayerZStd)
		}
	}
	fresh := newRoot(t)
	mustKiln(t, fresh, "pull", ref)
	if r := kiln(t, fresh, nil, "run", ref, "--", "echo", "zstd"); r.code != 0 || r.stdout != "zstd\n" {
		t.Errorf("run of the zstd image: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := kiln(t, root, nil, "push", "busybox", ref, "--compression", "lz4"); r.code == 0 || !strings.Contains(r.stderr, `unknown compression "lz4"`) {
		t.Errorf("push --compression lz4: exit %d, stderr %q", r.code, r.stderr)
	}
}

// loggedInRegistry starts a docker-registry with auth, gives the test a
// docker config of its own, and logs root in. It returns the registry
// and the --ca-file flag for kiln's commands.
func loggedInRegistry(t *testing.T, root string) (*dockerRegistry, string) {
	t.Helper()
	reg := startDockerRegistry(t)
	isolateDockerConfig(t)
	ca := "--ca-file=" + reg.caFile
	if r := kiln(t, root, strings.NewReader(reg.password+"\n"), "login", reg.host, "-u", reg.user, "--password-stdin", ca); r.code != 0 {
		t.Fatalf("kiln login: exit %d: %s", r.code, r.stderr)
	}
	return reg, ca
}
