package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNotFound is returned when no record matches.
var ErrNotFound = errors.New("no build record")

// DefaultKeep is how many records a Store keeps.
const DefaultKeep = 50

// Store is a directory of records, one JSON file each, named by ID.
// Several processes may use one at once.
type Store struct {
	dir  string
	keep int
}

// Option configures a Store.
type Option func(*Store) error

// WithKeep sets how many records Write leaves: older ones are removed.
// The default is DefaultKeep.
func WithKeep(n int) Option {
	return func(s *Store) error {
		if n <= 0 {
			return fmt.Errorf("keep %d records: must be positive", n)
		}
		s.keep = n
		return nil
	}
}

// Open returns the store of records in dir (typically <root>/history),
// which is made when the first record is written.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, keep: DefaultKeep}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// newID returns an ID that sorts by time: UTC to the nanosecond, then
// random hex against two builds in the same nanosecond.
func newID(t time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(b)
}

// Write stores r atomically (a reader sees all of it or none), giving it
// an ID and a Time if it has none, then removes the oldest records beyond
// the ones the store keeps.
func (s *Store) Write(ctx context.Context, r *Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.ID == "" {
		r.ID = newID(r.Time)
	}
	if strings.ContainsAny(r.ID, `/\`) || strings.HasPrefix(r.ID, ".") {
		return fmt.Errorf("writing build record: invalid id %q", r.ID)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("writing build record: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("writing build record %s: %w", r.ID, err)
	}
	p := filepath.Join(s.dir, r.ID+".json")
	f, err := os.CreateTemp(s.dir, ".tmp-"+r.ID+"-")
	if err != nil {
		return fmt.Errorf("writing build record %s: %w", p, err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing build record %s: %w", p, err)
	}
	return s.prune(ctx)
}

// ids returns the IDs of the stored records, oldest first.
func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing build records: %w", err)
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") || !e.Type().IsRegular() {
			continue
		}
		ids = append(ids, strings.TrimSuffix(n, ".json"))
	}
	sort.Strings(ids)
	return ids, nil
}

// prune removes the oldest records beyond s.keep, and temporary files
// that a crashed writer left an hour or more ago.
func (s *Store) prune(ctx context.Context) error {
	ids, err := s.ids()
	if err != nil {
		return err
	}
	for len(ids) > s.keep {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(s.dir, ids[0]+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pruning build records: %w", err)
		}
		ids = ids[1:]
	}
	tmps, _ := filepath.Glob(filepath.Join(s.dir, ".tmp-*"))
	for _, t := range tmps {
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(t)
		}
	}
	return nil
}

// Read returns the record with id.
func (s *Store) Read(ctx context.Context, id string) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := filepath.Join(s.dir, id+".json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("build record %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading build record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading build record %s: %w", p, err)
	}
	return &r, nil
}

// List returns every record, oldest first. A record removed meanwhile
// (another process pruned it) is left out.
func (s *Store) List(ctx context.Context) ([]*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.Read(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Last returns the newest record of the manifest at path (absolute), or
// an error wrapping ErrNotFound.
func (s *Store) Last(ctx context.Context, manifest string) (*Record, error) {
	rs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Manifest == manifest {
			return rs[i], nil
		}
	}
	return nil, fmt.Errorf("%w of %s (kiln build writes one)", ErrNotFound, manifest)
}

// Of returns the records of the manifest at path, oldest first.
func (s *Store) Of(ctx context.Context, manifest string) ([]*Record, error) {
	rs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, r := range rs {
		if r.Manifest == manifest {
			out = append(out, r)
		}
	}
	return out, nil
}
