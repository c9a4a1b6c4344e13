package store

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is Docker Hub's registry as docker writes it in a full name;
// go-containerregistry calls it name.DefaultRegistry (index.docker.io).
const dockerHub = "docker.io"

// FullName returns n as docker normalises it: with its registry, its
// "library/" namespace on Docker Hub and ":latest" when it has neither tag
// nor digest. "busybox", "busybox:latest", "library/busybox" and
// "docker.io/library/busybox" all are "docker.io/library/busybox:latest";
// "127.0.0.1:5000/app" is "127.0.0.1:5000/app:latest".
func FullName(n string) (string, error) {
	if n == "" {
		return "", fmt.Errorf("invalid image name %q: empty", n)
	}
	ref, err := name.ParseReference(n, name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", n, err)
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = dockerHub
	}
	repo := reg + "/" + ref.Context().RepositoryStr()
	if d, ok := ref.(name.Digest); ok {
		return repo + "@" + d.DigestStr(), nil
	}
	return repo + ":" + ref.Identifier(), nil
}

// Familiar returns a full name (see FullName) as docker prints it: without
// "docker.io/" and, for an official image, "library/" ("busybox:latest").
// Any other name is returned as it is.
func Familiar(full string) string {
	rest, ok := strings.CutPrefix(full, dockerHub+"/")
	if !ok {
		return full
	}
	if short, ok := strings.CutPrefix(rest, "library/"); ok && !strings.Contains(short, "/") {
		return short
	}
	return rest
}

// normalize validates an image name and returns its full name, as the
// store's index keeps it.
func normalize(n string) (string, error) { return FullName(n) }

// normalizeTag is normalize for a name that will name an image: it must
// have a tag, not a digest.
func normalizeTag(n string) (string, error) {
	if strings.Contains(n, "@") {
		return "", fmt.Errorf("invalid image name %q: a name with a digest cannot be given to an image", n)
	}
	return normalize(n)
}

// ParseTag checks that n can name an image of the store (as Tag takes it:
// a name, not a digest) and returns it as List and Name print it
// (Familiar).
func ParseTag(n string) (string, error) {
	full, err := normalizeTag(n)
	return Familiar(full), err
}

// sameName reports whether the name an index entry has (full, or as an
// older kiln wrote it: "busybox:latest") is full.
func sameName(entry, full string) bool {
	if entry == full {
		return true
	}
	n, err := normalize(entry)
	return err == nil && n == full
}
