package snapshot

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
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/internal/osthread"
	"github.com/kiln-build/kiln/internal/owner"
	"github.com/kiln-build/kiln/internal/topdir"
)

// Driver names a snapshotter implementation.
type Driver string

const (
	Auto      Driver = "auto"      // overlayfs where it mounts, else copy
	Overlayfs Driver = "overlayfs" // overlayfs over the shared layer directories
	Copy      Driver = "copy"      // a full copy of the layers per snapshot
)

// ParseDriver checks a --snapshotter value.
func ParseDriver(s string) (Driver, error) {
	switch d := Driver(s); d {
	case "", Auto:
		return Auto, nil
	case Overlayfs, Copy:
		return d, nil
	}
	return "", fmt.Errorf("unknown snapshotter %q: use auto, overlayfs or copy", s)
}

// Choice reports which snapshotter New picked, and why.
type Choice struct {
	Driver Driver
	Reason string // why not overlayfs, when the choice was automatic
}

// New returns a snapshotter keeping its snapshots in dir. With Auto it
// probes overlayfs on dir's filesystem (in a throwaway mount namespace)
// and falls back to copying, saying why in the Choice; a probe that
// succeeded is remembered in dir for the rest of the boot (see
// ProbeRecord).
func New(ctx context.Context, dir string, d Driver) (engine.Snapshotter, Choice, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, Choice{}, fmt.Errorf("creating snapshot directory: %w", err)
	}
	topdir.Mark(dir) // a hint: each snapshot's tree in a block group of its own
	b := base{dir: dir}
	switch d {
	case Overlayfs:
		return &overlay{b}, Choice{Driver: Overlayfs}, nil
	case Copy:
		return &copier{b}, Choice{Driver: Copy}, nil
	}
	if probeRemembered(dir) {
		return &overlay{b}, Choice{Driver: Overlayfs}, nil
	}
	if err := probeOverlay(dir); err != nil {
		return &copier{b}, Choice{Driver: Copy, Reason: err.Error()}, nil
	}
	rememberProbe(dir)
	return &overlay{b}, Choice{Driver: Overlayfs}, nil
}

// base holds what both snapshotters share: a directory per key.
type base struct{ dir string }

func (b base) path(key string, elem ...string) string {
	return filepath.Join(append([]string{b.dir, key}, elem...)...)
}

// create makes the snapshot directory of key with an owner record.
func (b base) create(key string) error {
	if err := engine.ValidID(key); err != nil {
		return fmt.Errorf("preparing snapshot: %w", err)
	}
	// The directory appears with its owner record already in it: made as
	// .new-<pid>-<random> (which Sweep removes once this process is gone)
	// and renamed, so that a crash never leaves a snapshot without owner.
	tmp, err := os.MkdirTemp(b.dir, newPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return fmt.Errorf("preparing snapshot %s: %w", key, err)
	}
	if err := owner.Self().Write(filepath.Join(tmp, "owner")); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("preparing snapshot %s: %w", key, err)
	}
	if err := os.Rename(tmp, b.path(key)); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("snapshot %s: %w", key, engine.ErrExists)
		}
		return fmt.Errorf("preparing snapshot %s: %w", key, err)
	}
	return nil
}

// newPrefix starts the names of snapshot directories being made:
// newPrefix + pid + "-" + random.
const newPrefix = ".new-"

func (b base) exists(key string) error {
	if engine.ValidID(key) != nil {
		return fmt.Errorf("snapshot %q: %w", key, engine.ErrNotFound)
	}
	if _, err := os.Stat(b.path(key, "owner")); err != nil {
		return fmt.Errorf("snapshot %s: %w", key, engine.ErrNotFound)
	}
	return nil
}

func (b base) writeParents(key string, parents []string) error {
	j, err := json.Marshal(parents)
	if err != nil {
		return err
	}
	return os.WriteFile(b.path(key, "parents.json"), j, 0o600)
}

func (b base) readParents(key string) ([]string, error) {
	var parents []string
	j, err := os.ReadFile(b.path(key, "parents.json"))
	if err != nil {
		return nil, fmt.Errorf("reading parents of snapshot %s: %w", key, err)
	}
	return parents, json.Unmarshal(j, &parents)
}

func (b base) Remove(ctx context.Context, key string) error {
	if err := b.exists(key); err != nil {
		return err
	}
	if err := removeAll(b.dir, b.path(key)); err != nil {
		return fmt.Errorf("removing snapshot %s: %w", key, err)
	}
	return nil
}

// delPrefix starts the names of snapshot directories being removed:
// delPrefix + pid + "-" + random.
const delPrefix = ".del-"

// removeAll removes the directory p in dir: first renamed out of sight, to
// .del-<pid>-<random> (which Sweep removes once this process is gone),
// so that a crash halfway never leaves p without its owner record, then
// removed. Where the rename fails, p is removed where it is.
func removeAll(dir, p string) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails on Linux
	trash := filepath.Join(dir, delPrefix+strconv.Itoa(os.Getpid())+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Rename(p, trash); err == nil {
		p = trash
	} else if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return os.RemoveAll(p)
}

func (b base) List(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("listing snapshots: %w", err)
	}
	var keys []string
	for _, e := range entries {
		if e.IsDir() && engine.ValidID(e.Name()) == nil {
			keys = append(keys, e.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Sweep removes the snapshots under dir whose owner no longer runs, and
// returns their keys.
func Sweep(ctx context.Context, dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweeping snapshots: %w", err)
	}
	var swept []string
	var errs []error
	for _, e := range entries {
		if e.Name() == ProbeRecord {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if pid, ok := tempPid(e.Name()); ok {
			// An overlay probe, or a snapshot being made or removed: gone
			// with its process, whatever its age.
			if o, err := owner.Of(pid); err == nil && o.Alive() {
				continue
			}
			if err := removeAll(dir, p); err != nil {
				errs = append(errs, fmt.Errorf("sweeping snapshot %s: %w", e.Name(), err))
				continue
			}
			swept = append(swept, e.Name())
			continue
		}
		o, err := owner.Read(filepath.Join(p, "owner"))
		if err == nil && o.Alive() {
			continue
		}
		if err != nil {
			// No owner record: a snapshot whose creation was cut short,
			// unless it is being created right now.
			if fi, serr := os.Stat(p); serr == nil && fi.ModTime().After(time.Now().Add(-time.Minute)) {
				continue
			}
		}
		if err := removeAll(dir, p); err != nil {
			errs = append(errs, fmt.Errorf("sweeping snapshot %s: %w", e.Name(), err))
			continue
		}
		swept = append(swept, e.Name())
	}
	return swept, errors.Join(errs...)
}

// tempPid returns the pid in the name of an overlay probe's directory
// (see probeOverlay), or of a snapshot directory being made (see create)
// or removed (see removeAll).
func tempPid(name string) (int, bool) {
	var rest string
	ok := false
	for _, prefix := range []string{probePrefix, newPrefix, delPrefix} {
		if rest, ok = strings.CutPrefix(name, prefix); ok {
			break
		}
	}
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil && pid > 0
}

// inPrivateMountNS runs fn on an OS thread in a mount namespace of its
// own, which goes away with the thread: mounts made by fn never reach
// the host, whatever happens.
func inPrivateMountNS(fn func() error) error {
	errc := make(chan error, 1)
	// Never unlocked: the thread exits with this goroutine, and its
	// namespace with it.
	osthread.Own(func() {
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("creating a mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making mounts private: %w", err)
			return
		}
		errc <- fn()
	})
	return <-errc
}
