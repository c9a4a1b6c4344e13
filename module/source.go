package module

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/registry"
)

// Scheme starts a registry module's source: oci://REGISTRY/REPO:TAG or
// oci://REGISTRY/REPO@sha256:DIGEST.
const Scheme = "oci://"

// Reference parses a module reference: a source with or without
// oci://. The registry must be named (a module never comes from Docker
// Hub by a short name).
func Reference(rc *registry.Client, source string) (name.Reference, error) {
	s := strings.TrimPrefix(source, Scheme)
	if !registry.HasHost(s) {
		return nil, fmt.Errorf("module %q: name its registry, as in %s127.0.0.1:5000/modules/NAME:TAG", source, Scheme)
	}
	return rc.Reference(s)
}

// Source returns the use: source of a reference: oci://REF.
func Source(ref name.Reference) string {
	return Scheme + ref.String()
}
