package manifest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The fuzz targets of the manifest frontends: whatever the input, Load and
// LoadDockerfile return a result or an error, never panic and never hang.
// Seeds are the golden cases (added here) and testdata/fuzz/Fuzz*/. Run one
// long with, for example:
//
//	go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 10m ./manifest/

// fuzzLoadTimeout bounds one load: a template that loops for ever fails
// the target instead of stalling the fuzzer.
const fuzzLoadTimeout = 10 * time.Second

// addSeeds adds the files named name under testdata/*/ and
// testdata/*/*/ as seeds.
func addSeeds(f *testing.F, name string) {
	f.Helper()
	for _, pattern := range []string{filepath.Join("testdata", "*", name), filepath.Join("testdata", "*", "*", name)} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// fuzzOptions are the options of a fuzzed load: no environment, a fixed
// host, bases with no config.
func fuzzOptions() Options {
	return Options{
		Getenv: func(string) string { return "" },
		Host:   &Host{Arch: "amd64", OS: "linux", CPUs: 2},
		ResolveBase: func(context.Context, string) (*ImageConfig, error) {
			return &ImageConfig{Env: []KV{{"PATH", "/bin"}}}, nil
		},
	}
}

// fuzzLoad writes data as the file name in a fresh directory, with a
// sibling file that includes may name, and loads it with load.
func fuzzLoad(t *testing.T, name string, data []byte, load func(ctx context.Context, path string, opts Options) (*Build, error)) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "part.yml"), []byte("- run: echo part\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzLoadTimeout)
	defer cancel()
	done := make(chan struct{})
	var b *Build
	var err error
	go func() {
		defer close(done)
		b, err = load(ctx, p, fuzzOptions())
	}()
	select {
	case <-done:
	case <-time.After(fuzzLoadTimeout + time.Second):
		t.Fatalf("loading %q took more than %v", data, fuzzLoadTimeout)
	}
	if err == nil && b == nil {
		t.Fatalf("loading %q: no build and no error", data)
	}
}

func FuzzLoad(f *testing.F) {
	addSeeds(f, "app.yml")
	// and the templates of the Jinja2 differential suite
	for _, c := range readJinjaCases(f) {
		if m, ok := c.files["manifest"]; ok {
			f.Add([]byte(m))
		} else {
			f.Add([]byte("from: busybox\nsteps:\n  - run: |\n" + c.files["template"]))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "kiln.yml", data, Load)
	})
}

func FuzzLoadDockerfile(f *testing.F) {
	addSeeds(f, "Dockerfile")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzLoad(t, "Dockerfile", data, LoadDockerfile)
	})
}
