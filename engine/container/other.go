//go:build !linux

package container

import (
	"context"
	"fmt"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/engine/idrange"
)

// Main returns false: containers run only on Linux.
func Main() bool { return false }

// Companion returns "": containers run only on Linux.
func Companion(exe string) string { return "" }

// StdioOnly does nothing: containers run only on Linux.
func StdioOnly() error { return nil }

// Runtime is unavailable on this platform.
type Runtime struct{}

// Option configures a Runtime.
type Option func(*struct{}) error

// WithUserNS does nothing: containers run only on Linux.
func WithUserNS(*idrange.Allocator) Option { return func(*struct{}) error { return nil } }

// New fails with engine.ErrUnsupported.
func New(ctx context.Context, dir string, opts ...Option) (*Runtime, error) {
	return nil, fmt.Errorf("container runtime: %w", engine.ErrUnsupported)
}

// Create fails with engine.ErrUnsupported.
func (r *Runtime) Create(ctx context.Context, spec engine.Spec) (engine.Container, error) {
	return nil, fmt.Errorf("container runtime: %w", engine.ErrUnsupported)
}

// OverlayLayersUnlimited reports false: overlays mount only on Linux.
func OverlayLayersUnlimited() bool { return false }
