package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Keys returns the keys of every record in the cache, sorted, for listing
// and checking (Verify) the whole cache. Temp files of records being
// written, and names that are not records, are left out.
func (c *Cache) Keys(ctx context.Context) ([]Key, error) {
	dirs, err := os.ReadDir(c.recordsDir())
	if err != nil {
		return nil, fmt.Errorf("list cache records: %w", err)
	}
	var keys []Key
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list cache records: %w", err)
		}
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(c.recordsDir(), d.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list cache records: %w", err)
		}
		for _, e := range ents {
			name, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok || !e.Type().IsRegular() || !strings.HasPrefix(name, d.Name()) {
				continue
			}
			k, err := ParseKey(name)
			if err != nil {
				continue
			}
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys, nil
}
