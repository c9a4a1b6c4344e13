package toolbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/internal/jinja"
)

// WriteValues writes the template values as a JSON object to a new file
// in dir, named after pattern as os.CreateTemp does, and returns its path.
func WriteValues(dir, pattern string, values map[string]any) (string, error) {
	b, err := json.Marshal(jinja.FromGo(values))
	if err != nil {
		return "", fmt.Errorf("encoding the template values: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o444)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing the template values: %w", err)
	}
	return f.Name(), nil
}

// ReadValues reads a values file. Maps keep their order (as
// *jinja.Dict), integers come back as int64 and other numbers as
// float64, so that templates print 3, not 3.000000.
func ReadValues(p string) (map[string]any, error) {
	b, err := os.ReadFile(filepath.Clean(p))
	if err != nil {
		return nil, fmt.Errorf("reading the template values: %w", err)
	}
	var d jinja.Dict
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("reading the template values %s: %w", p, err)
	}
	v := make(map[string]any, d.Len())
	for k, e := range d.All() {
		v[k.(string)] = e
	}
	return v, nil
}
