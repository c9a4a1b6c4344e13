//go:build !linux || !cgo

package nsjoin

import "github.com/kiln-build/kiln/internal/rootless"

// Joined returns the zero Holder: this kiln has no constructor.
func Joined() rootless.Holder { return rootless.Holder{} }
