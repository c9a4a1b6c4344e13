package module

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/image/registry"
)

// Scheme starts a registry module's source: oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:DIGEST.
const Scheme = "oci://"

// Reference parses a module reference: a source with or without
// oci://. A name without a registry is Docker Hub's, as for an image
// (oci://kiln/go:1 is docker.io/kiln/go:1).
func Reference(rc *registry.Client, source string) (name.Reference, error) {
	r, err := rc.Reference(strings.TrimPrefix(source, Scheme))
	if err != nil {
		return nil, fmt.Errorf("module %q: %w", source, err)
	}
	return r, nil
}

// Source returns the use: source of a reference: oci://REF.
func Source(ref name.Reference) string {
	return Scheme + ref.String()
}
