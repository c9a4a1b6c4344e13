package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/kiln-build/kiln/image/store"
)

// checkBuildFlags refuses the flags of kiln build that cannot all be
// honoured, before anything is loaded or run: a -t that cannot name an
// image, --push without a -t (or with one that is not a registry
// reference), -q with --progress, and two --output writing to one place.
// progressSet says whether --progress was given.
func (a *app) checkBuildFlags(f *buildFlags, progressSet bool, outputs []output) error {
	for _, t := range f.tags {
		if _, err := store.ParseTag(t); err != nil {
			return fmt.Errorf("-t %s: %w", t, err)
		}
	}
	if f.push {
		if len(f.tags) == 0 {
			return errors.New("--push needs at least one -t REGISTRY/REPO:TAG to push to; nothing was built")
		}
		rc, err := a.registry()
		if err != nil {
			return err
		}
		for _, t := range f.tags {
			if _, err := rc.Reference(t); err != nil {
				return fmt.Errorf("--push: -t %s: %w", t, err)
			}
		}
	}
	if f.quiet && progressSet {
		return errors.New("-q/--quiet prints only the digest: it cannot be given with --progress")
	}
	seen := map[string]string{}
	for _, o := range outputs {
		p, err := filepath.Abs(o.dest)
		if err != nil {
			return err
		}
		if prev, ok := seen[p]; ok {
			return fmt.Errorf("--output type=%s,dest=%s and --output %s both write %s", o.typ, o.dest, prev, p)
		}
		seen[p] = "type=" + o.typ + ",dest=" + o.dest
	}
	return nil
}
