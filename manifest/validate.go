package manifest

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
)

// inContext checks that src, a path relative to the build context, stays
// inside it.
func inContext(src string) error {
	s := filepath.ToSlash(src)
	if path.IsAbs(s) || filepath.IsAbs(src) {
		return errors.New("an absolute path is outside the build context: sources are relative to the context directory")
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return errors.New("the path is outside the build context: sources are relative to the context directory")
	}
	return nil
}
