package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/image/layer"
)

// Stack depths. overlayfs takes at most 500 lower layers, and the cost of
// a container grows with the depth of its stack (every lookup of a
// merged directory, / first, visits each layer): a stack deeper than
// MaxStack has its bottom layers merged. Before Linux 6.8 an overlay's
// layers are one mount option of at most a page: LegacyMaxStack of them
// fit.
const (
	MaxStack       = 100
	LegacyMaxStack = 40
)

// mergedPrefix starts the names of merged stacks in layers/: never a
// diffID, so that what walks the layer directories by diffID passes them.
const mergedPrefix = "merged-"

// Stack returns dirs (layer directories, base first, to be stacked as
// overlay lowers) as they are when there are at most limit of them. A
// deeper stack has its bottom layers replaced by one directory: the file
// system they make, merged (layer.Merge) into layers/merged-<digest of
// their paths> the first time it is needed, and kept as the layers are
// (unused, it is collected). The result shows the same files. Layers are
// merged a group of limit/2 at a time, the largest multiple of the group
// that leaves more than a group on top, so that a stack holds at most
// limit+1 directories and the steps that follow share its merged base.
func (s *Store) Stack(ctx context.Context, dirs []string, limit int) ([]string, error) {
	if len(dirs) <= limit {
		return dirs, nil
	}
	group := max(1, limit/2)
	k := (len(dirs)/group - 1) * group
	base, err := s.merged(ctx, dirs[:k], group)
	if err != nil {
		return nil, err
	}
	return append([]string{base}, dirs[k:]...), nil
}

// merged returns the directory of dirs merged, making it from the merge
// of their first len(dirs)-group (itself made the same way) and the rest,
// so that each group is merged once.
func (s *Store) merged(ctx context.Context, dirs []string, group int) (string, error) {
	h := sha256.Sum256([]byte(strings.Join(dirs, "\n")))
	dir := filepath.Join(s.layersDir(), mergedPrefix+hex.EncodeToString(h[:]))
	if err := markUsed(dir); err == nil {
		return dir, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("merging layers: %w", err)
	}
	lowers := dirs
	if len(dirs) > group {
		below, err := s.merged(ctx, dirs[:len(dirs)-group], group)
		if err != nil {
			return "", err
		}
		lowers = append([]string{below}, dirs[len(dirs)-group:]...)
	}
	tmp := s.tempName()
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", fmt.Errorf("merging layers: %w", err)
	}
	defer os.RemoveAll(tmp) // fails harmlessly once renamed
	if err := layer.Merge(ctx, tmp, lowers); err != nil {
		return "", fmt.Errorf("merging %d layers: %w", len(dirs), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another goroutine or process made it first: use theirs.
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return dir, markUsed(dir)
		}
		return "", fmt.Errorf("merging layers: %w", err)
	}
	return dir, nil
}
