//go:build !linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// Manager creates and finds kiln's groups. Cgroups exist only on Linux.
type Manager struct{}

// Cgroup is one of kiln's groups. Cgroups exist only on Linux.
type Cgroup struct{}

var errNotLinux = fmt.Errorf("cgroups on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// NewManager fails with an error wrapping [errors.ErrUnsupported]: cgroups
// exist only on Linux.
func NewManager(opts ...Option) (*Manager, error) {
	if _, err := newOptions(opts); err != nil {
		return nil, err
	}
	return nil, errNotLinux
}

// Version returns 0: there is no cgroup hierarchy.
func (m *Manager) Version() int { return 0 }

// Create fails with an error wrapping [errors.ErrUnsupported].
func (m *Manager) Create(ctx context.Context, name string, l Limits) (*Cgroup, error) {
	return nil, errNotLinux
}

// Open fails with an error wrapping [errors.ErrUnsupported].
func (m *Manager) Open(name string) (*Cgroup, error) { return nil, errNotLinux }

// List fails with an error wrapping [errors.ErrUnsupported].
func (m *Manager) List() ([]string, error) { return nil, errNotLinux }

// Name returns "".
func (c *Cgroup) Name() string { return "" }

// DeviceFilter returns false.
func (c *Cgroup) DeviceFilter() bool { return false }

// Add fails with an error wrapping [errors.ErrUnsupported].
func (c *Cgroup) Add(pid int) error { return errNotLinux }

// Procs fails with an error wrapping [errors.ErrUnsupported].
func (c *Cgroup) Procs() ([]int, error) { return nil, errNotLinux }

// OOMKilled fails with an error wrapping [errors.ErrUnsupported].
func (c *Cgroup) OOMKilled() (bool, error) { return false, errNotLinux }

// Kill fails with an error wrapping [errors.ErrUnsupported].
func (c *Cgroup) Kill() error { return errNotLinux }

// Delete fails with an error wrapping [errors.ErrUnsupported].
func (c *Cgroup) Delete(ctx context.Context) error { return errNotLinux }
