package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"
)

// Entry is a record with when it was last used (a hit or its creation).
type Entry struct {
	Record
	LastUsed time.Time
}

// List returns every readable record, most recently used first. Records
// that cannot be read are left out (Verify reports them).
func (c *Cache) List(ctx context.Context) ([]Entry, error) {
	keys, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, k := range keys {
		fi, err := os.Stat(c.recordPath(k))
		if err != nil {
			continue
		}
		r, _, err := c.Get(ctx, k)
		if err != nil {
			continue
		}
		// Get marked it used: report the time from before.
		out = append(out, Entry{Record: r, LastUsed: fi.ModTime()})
		_ = os.Chtimes(c.recordPath(k), fi.ModTime(), fi.ModTime())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastUsed.After(out[j].LastUsed) })
	return out, nil
}

// PruneOptions say which records to drop.
type PruneOptions struct {
	// KeepBytes keeps the most recently used records whose layers add up
	// to at most this many bytes; negative keeps all (by size).
	KeepBytes int64
	// Until drops the records not used for this long; 0 drops none by age.
	Until time.Duration
}

// Prune deletes records, least recently used first, until the kept
// layers fit in KeepBytes, and those not used within Until. It returns
// what it deleted. The layers themselves go at the store's next
// collection, and not before store.GCGrace: a build using one now keeps
// it.
func (c *Cache) Prune(ctx context.Context, o PruneOptions) ([]Entry, error) {
	entries, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	var kept int64
	var removed []Entry
	var errs []error
	now := time.Now()
	for _, e := range entries { // most recently used first
		drop := o.Until > 0 && now.Sub(e.LastUsed) > o.Until
		if !drop && o.KeepBytes >= 0 && kept+e.Layer.Size > o.KeepBytes {
			drop = true
		}
		if !drop {
			kept += e.Layer.Size
			continue
		}
		if err := c.Delete(ctx, e.Key); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("pruning the cache: %w", err)
	}
	return removed, nil
}
