package toolbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// WriteValues writes the template values as a JSON object to a new file
// in dir, named after pattern as os.CreateTemp does, and returns its path.
func WriteValues(dir, pattern string, values map[string]any) (string, error) {
	b, err := json.Marshal(values)
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

// ReadValues reads a values file. Integers come back as int64 and other
// numbers as float64, so that templates print 3, not 3.000000.
func ReadValues(p string) (map[string]any, error) {
	b, err := os.ReadFile(filepath.Clean(p))
	if err != nil {
		return nil, fmt.Errorf("reading the template values: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("reading the template values %s: %w", p, err)
	}
	return numbers(v).(map[string]any), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
