package snapshot

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/image/layer"
)

// copier is the fallback snapshotter: each snapshot is a full copy of
// its merged parents, bind-mounted as the root, and its diff is found by
// comparing it with the parents.
type copier struct{ base }

var _ engine.Snapshotter = (*copier)(nil)

func (c *copier) Prepare(ctx context.Context, key string, parents []string) ([]engine.Mount, error) {
	if err := c.create(key); err != nil {
		return nil, err
	}
	fail := func(err error) ([]engine.Mount, error) {
		c.Remove(ctx, key) //nolint:errcheck // reporting the first error
		return nil, fmt.Errorf("preparing snapshot %s: %w", key, err)
	}
	if err := c.writeParents(key, parents); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(c.path(key, "fs"), 0o755); err != nil {
		return fail(err)
	}
	if err := layer.Merge(ctx, c.path(key, "fs"), parents); err != nil {
		return fail(err)
	}
	return c.Mounts(ctx, key)
}

func (c *copier) Mounts(ctx context.Context, key string) ([]engine.Mount, error) {
	if err := c.exists(key); err != nil {
		return nil, err
	}
	return []engine.Mount{{Type: "bind", Source: c.path(key, "fs"), Options: []string{"rbind", "rw"}}}, nil
}

func (c *copier) Diff(ctx context.Context, key string, w io.Writer, opts engine.DiffOptions) error {
	if err := c.exists(key); err != nil {
		return err
	}
	parents, err := c.readParents(key)
	if err != nil {
		return err
	}
	var lo []layer.Option
	if opts.SourceDateEpoch != nil {
		lo = append(lo, layer.WithSourceDateEpoch(*opts.SourceDateEpoch))
	}
	if err := layer.WriteDiff(ctx, w, parents, c.path(key, "fs"), lo...); err != nil {
		return fmt.Errorf("diffing snapshot %s: %w", key, err)
	}
	return nil
}
