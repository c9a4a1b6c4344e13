package lock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/regfile"
)

// Name is the lock file's name, beside the manifest.
const Name = "kiln.lock"

// header starts every lock file.
const header = "# kiln.lock: written by kiln lock; kiln build --locked uses exactly these digests.\n"

// File is a lock file: digests by reference.
type File struct {
	// Images are base image references (REGISTRY/REPO:TAG) and the
	// digest of what they name: an image's, or an image index's (a tag
	// of several platforms).
	Images map[string]string `yaml:"images,omitempty"`
	// Platforms are, for each base of Images that names an index, the
	// digest of each platform's image in it (os/arch[/variant]): what
	// a build for that platform uses.
	Platforms map[string]map[string]string `yaml:"platforms,omitempty"`
	// Modules are registry module sources (oci://REGISTRY/REPO:TAG) and
	// the digest of the module's manifest.
	Modules map[string]string `yaml:"modules,omitempty"`
}

// PathFor returns the lock file of the manifest at path.
func PathFor(manifest string) string {
	return filepath.Join(filepath.Dir(manifest), Name)
}

// Read reads the lock file at path, inside its directory: a symbolic
// link leading out of it, or a file that is not a regular file (a FIFO),
// is an error naming it (see package regfile). A missing file is an error
// that wraps os.ErrNotExist.
func Read(path string) (*File, error) {
	b, err := regfile.ReadFile(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("reading the lock file: %w", err)
	}
	f := &File{}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading the lock file %s: %w (run kiln lock to write it again)", path, err)
	}
	ms := []map[string]string{f.Images, f.Modules}
	for ref, ps := range f.Platforms {
		if _, ok := f.Images[ref]; !ok {
			return nil, fmt.Errorf("reading the lock file %s: platforms: %s is not in images (run kiln lock to write it again)", path, ref)
		}
		ms = append(ms, ps)
	}
	for _, m := range ms {
		for ref, d := range m {
			if !isDigest(d) {
				return nil, fmt.Errorf("reading the lock file %s: %s: %q is not a sha256 digest (run kiln lock to write it again)", path, ref, d)
			}
		}
	}
	return f, nil
}

func isDigest(d string) bool {
	return strings.HasPrefix(d, "sha256:") && len(d) == len("sha256:")+64 && strings.Trim(d[len("sha256:"):], "0123456789abcdef") == ""
}

// Write writes f to path atomically.
func Write(path string, f *File) error {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("writing the lock file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("writing the lock file: %w", err)
	}
	if err := atomicfile.Write(path, buf.Bytes(), 0o644, nil); err != nil {
		return fmt.Errorf("writing the lock file: %w", err)
	}
	return nil
}

// Pin returns the image reference locked for ref, as REGISTRY/REPO@DIGEST,
// and whether the lock has ref.
func (f *File) Pin(ref string) (string, bool) {
	d, ok := f.Images[ref]
	if !ok {
		return "", false
	}
	return PinRef(ref, d), true
}

// PinFor returns the image reference locked for ref on platform p (as
// os/arch[/variant]): the digest of p's image when ref names an index,
// else ref's own digest. It reports whether the lock has ref, and, when
// it has ref's index, whether it has p's image in it.
func (f *File) PinFor(ref, p string) (pin string, ok, platformOK bool) {
	d, ok := f.Images[ref]
	if !ok {
		return "", false, false
	}
	ps, index := f.Platforms[ref]
	if !index {
		return PinRef(ref, d), true, true
	}
	if pd, ok := ps[p]; ok {
		return PinRef(ref, pd), true, true
	}
	return "", true, false
}

// PinRef returns ref (with a tag, a digest or neither) by digest d.
func PinRef(ref, d string) string {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		repo, _, _ := strings.Cut(ref, "@")
		return repo + "@" + d
	}
	return r.Context().Name() + "@" + d
}

// Drift is a reference whose digest now is not the locked one.
type Drift struct {
	Kind   string // "image" or "module"
	Ref    string
	Locked string // "" when the lock does not have Ref
	Now    string
}

func (d Drift) String() string {
	if d.Locked == "" {
		return fmt.Sprintf("%s %s is not in %s", d.Kind, d.Ref, Name)
	}
	return fmt.Sprintf("%s %s is %s now, %s has %s", d.Kind, d.Ref, d.Now, Name, d.Locked)
}

// Compare returns what now (the digests references resolve to now) has
// that f does not, or has otherwise: sorted, images first.
func (f *File) Compare(now *File) []Drift {
	var out []Drift
	for _, k := range []struct {
		kind        string
		locked, cur map[string]string
	}{{"image", f.Images, now.Images}, {"module", f.Modules, now.Modules}} {
		refs := make([]string, 0, len(k.cur))
		for r := range k.cur {
			refs = append(refs, r)
		}
		sort.Strings(refs)
		for _, r := range refs {
			if l := k.locked[r]; l != k.cur[r] {
				out = append(out, Drift{Kind: k.kind, Ref: r, Locked: l, Now: k.cur[r]})
			}
			if k.kind == "image" {
				out = append(out, comparePlatforms(r, f.Platforms[r], now.Platforms[r])...)
			}
		}
	}
	return out
}

// comparePlatforms returns the platforms of the index ref whose image now
// is not the locked one: Ref names the platform, "REF (os/arch)".
func comparePlatforms(ref string, locked, cur map[string]string) []Drift {
	ps := make([]string, 0, len(cur))
	for p := range cur {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	var out []Drift
	for _, p := range ps {
		if l := locked[p]; l != cur[p] {
			out = append(out, Drift{Kind: "image", Ref: ref + " (" + p + ")", Locked: l, Now: cur[p]})
		}
	}
	return out
}
