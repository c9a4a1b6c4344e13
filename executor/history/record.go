package history

import (
	"fmt"
	"time"

	"github.com/kiln-build/kiln/executor/buildctx"
)

// Record is one build.
type Record struct {
	// ID is unique and sorts in the order builds were recorded.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Manifest is the manifest's absolute path; Context the build
	// context's.
	Manifest string `json:"manifest"`
	Context  string `json:"context,omitempty"`
	Target   string `json:"target,omitempty"`
	// Values, Set and BuildArgs are the --values files, --set values and
	// --build-arg values as given.
	Values    []string `json:"values,omitempty"`
	Set       []string `json:"set,omitempty"`
	BuildArgs []string `json:"build_args,omitempty"`
	Duration  Duration `json:"duration"`
	// Status is "succeeded", "failed" or "cancelled"; Error says why a
	// build did not succeed.
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Digest is the image's manifest digest, for a build that succeeded
	// (of a build for several platforms, the image index's).
	Digest string `json:"digest,omitempty"`
	// Platforms are the platforms of a build for several (its nodes'
	// keys start with the platform they were built for); none for a
	// build of one image.
	Platforms []string `json:"platforms,omitempty"`
	Bases     []Base   `json:"bases,omitempty"`
	Nodes     []Node   `json:"nodes"`
}

// The statuses of a build.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// Base is a base image a stage resolved.
type Base struct {
	Stage  string `json:"stage"`
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"` // "" for scratch
	// Platform is the platform the stage was built for, in a build for
	// several platforms.
	Platform string `json:"platform,omitempty"`
}

// Node is what one node of the graph did.
type Node struct {
	Key  string `json:"key"` // the node's key in the graph: "main/2"
	Name string `json:"name"`
	Kind string `json:"kind"` // base, step, test or service
	// Parent is the key of the node whose filesystem this one builds on.
	Parent   string   `json:"parent,omitempty"`
	State    string   `json:"state"` // its last fsm state
	Duration Duration `json:"duration"`
	CacheKey string   `json:"cache_key,omitempty"`
	// Inputs are what CacheKey covers; nil when the node never got as
	// far as computing it.
	Inputs *Inputs `json:"inputs,omitempty"`
}

// Inputs are what a node's cache key covers, as package cache's KeyInput
// has them, plus a copy's sources file by file and a base's image.
type Inputs struct {
	Parent  string   `json:"parent,omitempty"` // the parent's cache key
	Kind    string   `json:"kind,omitempty"`
	Args    []string `json:"args,omitempty"`
	Env     []string `json:"env,omitempty"`
	Workdir string   `json:"workdir,omitempty"`
	User    string   `json:"user,omitempty"`
	Shell   []string `json:"shell,omitempty"`
	Network string   `json:"network,omitempty"`
	Epoch   string   `json:"epoch,omitempty"`
	// Digests are the content digests of a copy's or template's inputs.
	Digests []string `json:"digests,omitempty"`
	// Sources are a copy's sources from the build context.
	Sources []Source `json:"sources,omitempty"`
	// BaseRef and BaseDigest are a base node's image.
	BaseRef    string `json:"base_ref,omitempty"`
	BaseDigest string `json:"base_digest,omitempty"`
}

// Source is one copy source from the build context, with its files.
type Source struct {
	Source string          `json:"source"`
	Digest string          `json:"digest"`
	Files  []buildctx.File `json:"files"`
}

// Counts returns how many steps and tests ran (done, passed or failed)
// and how many were cached. Base nodes and steps that only change the
// config count as cached; services (which run for their tests) do not
// count.
func (r *Record) Counts() (ran, cached int) {
	for _, n := range r.Nodes {
		switch Tally(n.Kind, n.State) {
		case Ran:
			ran++
		case WasCached:
			cached++
		}
	}
	return ran, cached
}

// A Tallied is how a node counts in a build's summary.
type Tallied int

// How a node counts: not at all, as ran, or as cached.
const (
	Uncounted Tallied = iota
	Ran
	WasCached
)

// Tally says how a node of kind (a dag.Kind) that ended in state (an
// fsm.State) counts in a build's summary: a step or test that ran (done,
// passed or failed) or was cached; a service (which runs for its tests)
// never counts.
func Tally(kind, state string) Tallied {
	if kind == "service" {
		return Uncounted
	}
	switch state {
	case "done", "passed", "failed":
		return Ran
	case "cached":
		return WasCached
	}
	return Uncounted
}

// Node returns the node with key, or nil.
func (r *Record) Node(key string) *Node {
	for i := range r.Nodes {
		if r.Nodes[i].Key == key {
			return &r.Nodes[i]
		}
	}
	return nil
}

// Duration is a time.Duration that JSON holds as text: "1.5s".
type Duration time.Duration

// MarshalText writes d as time.Duration's String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// String rounds d to the millisecond.
func (d Duration) String() string { return time.Duration(d).Round(time.Millisecond).String() }
