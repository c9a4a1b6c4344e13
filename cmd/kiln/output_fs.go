package main

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/image/layer"
	"github.com/kiln-build/kiln/internal/atomicfile"
)

// writeFilesystem writes the final filesystem of img, its layers
// flattened, as buildx's local and tar exporters do: typ "local"
// extracts it into the directory dest (created if missing; what is
// there is overwritten entry by entry, as buildx does), typ "tar" writes
// it as one tar file at dest, atomically.
func writeFilesystem(ctx context.Context, img v1.Image, typ, dest string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	if typ == "local" {
		if err := layer.Extract(ctx, rc, dest); err != nil {
			return fmt.Errorf("writing the filesystem to %s: %w", dest, err)
		}
		return nil
	}
	err := atomicfile.WriteWith(dest, 0o644, nil, func(w io.Writer) error {
		if _, err := io.Copy(w, rc); err != nil {
			return err
		}
		return ctx.Err() // a cancelled build leaves no tar
	})
	if err != nil {
		return fmt.Errorf("writing the filesystem to %s: %w", dest, err)
	}
	return nil
}
