package idrange

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/subid"
)

const (
	// Name is the /etc/subuid and /etc/subgid entry kiln takes its ranges
	// from.
	Name = "kiln"
	// Size is how many ids a step's user namespace maps: 0–65535.
	Size = 65536
	// DefaultStart and DefaultSlots make the default range, used without
	// an entry for Name.
	DefaultStart = 0x70000000
	DefaultSlots = (0x7FFE0000 - DefaultStart) / Size
	// DefaultLockDir holds a lock file per slot, shared by every kiln.
	DefaultLockDir = "/run/kiln/userns"
)

// Range is a slot: container uid i is host uid UID+i, container gid i
// host gid GID+i, for i below Size.
type Range struct{ UID, GID uint32 }

// Allocator hands out slots.
type Allocator struct {
	slots   []Range
	lockDir string
	source  string // where the slots come from, for messages

	mu   sync.Mutex
	idle []*Lease // released, still locked: reused first
}

// Option configures an Allocator.
type Option func(*options)

type options struct {
	lockDir        string
	subuid, subgid string
}

// WithLockDir sets the directory of the slots' lock files; every kiln
// that may run at once must use the same one.
func WithLockDir(dir string) Option { return func(o *options) { o.lockDir = dir } }

// WithSubIDFiles reads the ranges from these files instead of
// /etc/subuid and /etc/subgid.
func WithSubIDFiles(subuid, subgid string) Option {
	return func(o *options) { o.subuid, o.subgid = subuid, subgid }
}

// New reads the subordinate id files and returns an allocator of their
// slots for Name, or of the default range's.
func New(opts ...Option) (*Allocator, error) {
	o := options{lockDir: DefaultLockDir, subuid: "/etc/subuid", subgid: "/etc/subgid"}
	for _, opt := range opts {
		opt(&o)
	}
	uids, err := subid.Read(o.subuid)
	if err != nil {
		return nil, err
	}
	gids, err := subid.Read(o.subgid)
	if err != nil {
		return nil, err
	}
	a := &Allocator{lockDir: o.lockDir}
	us, gs := slotsOf(uids, Name), slotsOf(gids, Name)
	if len(us) > 0 || len(gs) > 0 {
		a.source = fmt.Sprintf("the %q entries of %s and %s", Name, o.subuid, o.subgid)
	} else {
		a.source = "kiln's default range"
		def := []subid.Entry{{Name: Name, Start: DefaultStart, Count: DefaultSlots * Size}}
		us = free(slotsOf(def, Name), uids)
		gs = free(slotsOf(def, Name), gids)
	}
	for i := 0; i < len(us) && i < len(gs); i++ {
		a.slots = append(a.slots, Range{UID: uint32(us[i]), GID: uint32(gs[i])})
	}
	if len(a.slots) == 0 {
		return nil, fmt.Errorf("user namespaces: no range of %d ids in %s", Size, a.source)
	}
	return a, nil
}

// slotsOf returns the starts of the whole slots in the spans of name.
// Slots never reach past the 32-bit id space less its last id.
func slotsOf(spans []subid.Entry, name string) []uint64 {
	var out []uint64
	for _, s := range spans {
		if s.Name != name {
			continue
		}
		for st := s.Start; st+Size <= s.Start+s.Count && st+Size < 1<<32; st += Size {
			out = append(out, st)
		}
	}
	return out
}

// free returns the slots that no span overlaps.
func free(slots []uint64, spans []subid.Entry) []uint64 {
	var out []uint64
	for _, st := range slots {
		ok := true
		for _, s := range spans {
			if s.Start < st+Size && st < s.Start+s.Count {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, st)
		}
	}
	return out
}

// Slots returns how many slots the allocator has.
func (a *Allocator) Slots() int { return len(a.slots) }

// Lease is a slot held until Release.
type Lease struct {
	Range
	a    *Allocator
	f    *os.File
	held int // from Held, or -1
}

// Release gives the slot back to the allocator, which keeps it locked
// for the next Allocate of this process until Close: a slot is only
// released once what used it has ended (a container's processes die with
// its PID 1), so reusing it is as safe as a fresh one, and what Held made
// for it is reused too.
func (l *Lease) Release() {
	l.a.mu.Lock()
	defer l.a.mu.Unlock()
	l.a.idle = append(l.a.idle, l)
}

// Held returns the descriptor that make returns for the slot, made on
// the first call and kept open, with the slot, until the allocator's
// Close.
func (l *Lease) Held(make func(Range) (int, error)) (int, error) {
	if l.held < 0 {
		fd, err := make(l.Range)
		if err != nil {
			return -1, err
		}
		l.held = fd
	}
	return l.held, nil
}

// Close gives the slots that are not in use back to other processes.
func (a *Allocator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, l := range a.idle {
		if l.held >= 0 {
			unix.Close(l.held)
		}
		errs = append(errs, l.f.Close())
	}
	a.idle = nil
	return errors.Join(errs...)
}

// Allocate takes a slot: one this process released, else the first free
// one whose lock it gets, from a random place on (so that concurrent
// kilns rarely try the same ones).
func (a *Allocator) Allocate(ctx context.Context) (*Lease, error) {
	a.mu.Lock()
	if n := len(a.idle); n > 0 {
		l := a.idle[n-1]
		a.idle = a.idle[:n-1]
		a.mu.Unlock()
		return l, nil
	}
	a.mu.Unlock()
	if err := os.MkdirAll(a.lockDir, 0o700); err != nil {
		return nil, fmt.Errorf("allocating a user namespace range: %w", err)
	}
	n := len(a.slots)
	first := rand.IntN(n)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r := a.slots[(first+i)%n]
		p := filepath.Join(a.lockDir, strconv.FormatUint(uint64(r.UID), 10)+".lock")
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("allocating a user namespace range: %w", err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &Lease{Range: r, a: a, f: f, held: -1}, nil
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("allocating a user namespace range: locking %s: %w", p, err)
		}
	}
	return nil, fmt.Errorf("allocating a user namespace range: all %d slots of %s are in use", n, a.source)
}
