package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Key is a step's cache key: a sha256.
type Key [32]byte

// String returns the key in lowercase hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// MarshalText encodes the key as lowercase hex.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a key from 64 hex digits.
func (k *Key) UnmarshalText(b []byte) error {
	p, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// ParseKey parses a key from its 64 hex digits.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != 2*len(k) {
		return Key{}, fmt.Errorf("invalid cache key %q: want %d hex digits", s, 2*len(k))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return Key{}, fmt.Errorf("invalid cache key %q: %w", s, err)
	}
	return k, nil
}

// KeyInput is what a step's cache key covers.
type KeyInput struct {
	Parent  Key       // the parent step's key, or the stage base's BaseKey
	Kind    string    // "run", "copy", "template"
	Args    []string  // the command argv (run), or src, dst, mode, owner (copy, template)
	Env     []string  // KEY=VALUE the step runs with, in order
	Workdir string    // the working directory the step runs in
	User    string    // the user the step runs as
	Shell   []string  // the shell that runs shell-form commands
	Network string    // the step's network mode
	Inputs  []v1.Hash // content digests of copy/template inputs, in order
	// Epoch is the SOURCE_DATE_EPOCH the layer's times are clamped to
	// ("" for none): the same step gives another layer under another one.
	Epoch string
	// Platform is the platform a run step or test of a foreign platform
	// runs for ("linux/arm64", emulated); "" for the host's, which keeps
	// the keys of single-platform builds as they were.
	Platform string `json:",omitempty"`
}

// keyVersion starts every encoding; change it whenever the encoding or the
// meaning of a field changes, so that old records are no longer hit.
const keyVersion = "kiln cache key v2"

// ComputeKey returns the key of in: the sha256 of a canonical encoding in
// which every field, in a fixed order, is length-prefixed (lists by their
// element count, each element by its byte length), so that no two different
// inputs encode alike. A nil and an empty list encode alike.
func ComputeKey(in KeyInput) Key {
	e := encoder{h: sha256.New()}
	e.str(keyVersion)
	e.bytes(in.Parent[:])
	e.str(in.Kind)
	e.strs(in.Args)
	e.strs(in.Env)
	e.str(in.Workdir)
	e.str(in.User)
	e.strs(in.Shell)
	e.str(in.Network)
	e.uint(uint64(len(in.Inputs)))
	for _, h := range in.Inputs {
		e.str(h.Algorithm)
		e.str(h.Hex)
	}
	e.str(in.Epoch)
	if in.Platform != "" {
		e.str("platform")
		e.str(in.Platform)
	}
	return e.sum()
}

// baseVersion starts the encoding of a base key.
const baseVersion = "kiln cache base v1"

// BaseKey returns the key that a stage's first step has as its parent: it
// covers the base image's manifest digest. The zero Hash stands for scratch
// (no base), which so has a fixed key.
func BaseKey(imageDigest v1.Hash) Key {
	e := encoder{h: sha256.New()}
	e.str(baseVersion)
	e.str(imageDigest.Algorithm)
	e.str(imageDigest.Hex)
	return e.sum()
}

// encoder writes length-prefixed fields to a hash.
type encoder struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) uint(n uint64) {
	e.h.Write(binary.AppendUvarint(e.buf[:0], n))
}

func (e *encoder) bytes(b []byte) {
	e.uint(uint64(len(b)))
	e.h.Write(b)
}

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.h.Write([]byte(s))
}

func (e *encoder) strs(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) sum() Key {
	var k Key
	e.h.Sum(k[:0])
	return k
}
