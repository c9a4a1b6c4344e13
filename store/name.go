package store

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// normalize validates an image name and returns it with ":latest" added when
// it has neither tag nor digest. A ':' after the last '/' starts a tag, so
// "127.0.0.1:5000/app" becomes "127.0.0.1:5000/app:latest".
func normalize(n string) (string, error) {
	if n == "" {
		return "", fmt.Errorf("invalid image name %q: empty", n)
	}
	if !strings.Contains(n, "@") && !strings.Contains(n[strings.LastIndex(n, "/")+1:], ":") {
		n += ":" + name.DefaultTag
	}
	if _, err := name.ParseReference(n, name.WeakValidation); err != nil {
		return "", fmt.Errorf("invalid image name %q: %w", n, err)
	}
	return n, nil
}

// normalizeTag is normalize for a name that will name an image: it must
// have a tag, not a digest.
func normalizeTag(n string) (string, error) {
	if strings.Contains(n, "@") {
		return "", fmt.Errorf("invalid image name %q: a name with a digest cannot be given to an image", n)
	}
	return normalize(n)
}

// ParseTag checks that n can name an image of the store (as Tag takes it:
// a name, not a digest) and returns it normalised as Tag names the image.
func ParseTag(n string) (string, error) { return normalizeTag(n) }
