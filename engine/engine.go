package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ErrNotFound is returned when a snapshot or container does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when a snapshot or container of that name exists.
var ErrExists = errors.New("already exists")

// ErrUnsupported is returned on platforms without the kernel features the
// engine needs.
var ErrUnsupported = errors.New("not supported on this platform")

// Mount is a serialized mount(2) call. Snapshotters emit mounts and the
// container runtime performs them inside the container's own mount
// namespace, so a mount never outlives the container that made it.
type Mount struct {
	Type    string   // "overlay", "bind", "tmpfs", …
	Source  string   // a path on the host, or a pseudo source ("overlay")
	Target  string   // where, inside the container; "" for the root filesystem
	Options []string // fstab-style options: "ro", "rbind", "lowerdir=…"
	// File, when set, is the content of a file bind-mounted at Target
	// (Type "bind"; Source is unused): the runtime keeps it in memory, on
	// a tmpfs of the container's own mount namespace, so that it is never
	// written to the host's disk and goes away with the container even
	// if kiln is killed. Secrets are mounted so.
	File *File
}

// File is the content, mode and owner of a file given to a container.
type File struct {
	Data     []byte
	Mode     os.FileMode // permission bits
	UID, GID int
}

// Writable returns the host directory that receives the writes made
// through the root filesystem mounts: the upperdir of an overlay, or the
// source of a bind mount.
func Writable(mounts []Mount) (string, error) {
	for _, m := range mounts {
		if m.Target != "" && m.Target != "/" {
			continue
		}
		switch m.Type {
		case "overlay":
			for _, o := range m.Options {
				if v, ok := strings.CutPrefix(o, "upperdir="); ok {
					return v, nil
				}
			}
			return "", fmt.Errorf("overlay mount of %s has no upperdir", m.Source)
		case "bind":
			return m.Source, nil
		}
	}
	return "", errors.New("no writable root filesystem mount")
}

// Snapshotter prepares writable root filesystems over read-only layer
// directories. A layer directory holds one unpacked layer in overlay form:
// a deletion is a 0/0 character device and an opaque directory carries
// the trusted.overlay.opaque=y extended attribute.
//
// A snapshotter never mounts anything itself: Prepare returns the mounts,
// and the container runtime performs them in the container's namespace.
type Snapshotter interface {
	// Prepare creates the active snapshot key over parents (layer
	// directories, base first) and returns the mounts of its root
	// filesystem. It fails with ErrExists when key exists.
	Prepare(ctx context.Context, key string, parents []string) ([]Mount, error)
	// Mounts returns the mounts of an existing snapshot.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Diff writes the changes made in snapshot key, relative to its
	// parents, to w as an uncompressed OCI layer tar. The snapshot must
	// not be mounted by a running container.
	Diff(ctx context.Context, key string, w io.Writer, opts DiffOptions) error
	// Remove deletes snapshot key and everything written to it.
	Remove(ctx context.Context, key string) error
	// List returns the keys of all snapshots.
	List(ctx context.Context) ([]string, error)
}

// Committer is a Snapshotter whose writable layer is already a layer
// directory in overlay form (overlayfs's upperdir): after Diff, Writable
// hands it over, so that the layer need not be unpacked again from its
// tar. Moving the directory away removes the snapshot's changes; Remove
// the snapshot afterwards as usual.
type Committer interface {
	// Writable returns the directory holding snapshot key's changes, in
	// overlay form, relative to its parents.
	Writable(ctx context.Context, key string) (string, error)
}

// DiffOptions tune how a snapshot's changes become a layer.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps every timestamp in the layer to
	// at most this time, for reproducible digests.
	SourceDateEpoch *time.Time
}

// Network selects the container's network namespace.
type Network string

const (
	// NetworkHost shares the host's network, as docker build gives RUN.
	NetworkHost Network = "host"
	// NetworkNone gives the container a namespace of its own with only a
	// loopback interface.
	NetworkNone Network = "none"
)

// ParseNetwork checks a --network value.
func ParseNetwork(s string) (Network, error) {
	switch Network(s) {
	case "", NetworkHost:
		return NetworkHost, nil
	case NetworkNone:
		return NetworkNone, nil
	}
	return "", fmt.Errorf("unknown network mode %q: use host or none", s)
}

// Limits bound the resources of a container. Zero means the default.
type Limits struct {
	Pids   int64   // at most this many tasks; the default is 2048
	Memory int64   // bytes of memory; the default is no limit
	CPUs   float64 // CPU time as a number of CPUs (1.5); the default is no limit
}

// Process describes a process to run in a container.
type Process struct {
	Args []string // Args[0] is looked up in the container's PATH
	Env  []string // KEY=VALUE
	Cwd  string   // absolute; created when missing; the default is /
	// User is "uid[:gid]" or "name[:group]" looked up in the container's
	// /etc/passwd and /etc/group. The default is root.
	User string
	// Terminal gives the process a pseudo-terminal, made in the
	// container's own /dev/pts, as its stdin, stdout, stderr and
	// controlling terminal. Stdin is then copied to the terminal and the
	// terminal's output to Stdout; Stderr is not used.
	Terminal bool
	// Console, with Terminal, is called with the terminal's controlling
	// side once the process has started, to set its size (and follow
	// the caller's). It must not be closed.
	Console func(*os.File)
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Spec describes a container.
type Spec struct {
	ID       string  // unique among running containers; see ValidID
	Rootfs   []Mount // the root filesystem, usually from a Snapshotter
	Mounts   []Mount // further bind mounts; Source on the host, Target inside
	Process  Process // PID 1 of the container
	Hostname string  // the default is the ID, shortened to 12 characters
	Network  Network
	// NetNS, when set, is the path of a network namespace (a Pod's) that
	// the container joins in place of Network's.
	NetNS  string
	Limits Limits
	// Timeout kills the container when it has run this long.
	Timeout time.Duration
	// Exec keeps a helper in the container so that Container.Exec can
	// start more processes in it. It costs one process and a millisecond.
	Exec bool
}

// Status is how a container's PID 1 ended.
type Status struct {
	Code      int    // exit code, or 128+signal
	Signal    string // the signal that killed it, if any ("killed")
	OOMKilled bool   // killed by the kernel for exceeding Limits.Memory
	TimedOut  bool   // killed because Spec.Timeout passed
	Cancelled bool   // killed because the caller's context ended
}

// Err describes an abnormal end as an error, or returns nil when the
// process exited on its own, whatever its code.
func (s Status) Err() error {
	switch {
	case s.OOMKilled:
		return errors.New("killed by the kernel: out of memory (over the container's memory limit)")
	case s.TimedOut:
		return errors.New("killed: the timeout passed")
	case s.Cancelled:
		return errors.New("killed: cancelled")
	}
	return nil
}

// Pod is a network namespace of its own, with only a loopback interface
// up, that containers join (Spec.NetNS): they reach each other on
// 127.0.0.1, as a Kubernetes pod's containers do, and nothing of the
// host. It lives while the Pod is open or a container is in it.
type Pod interface {
	NetNS() string // the path that Spec.NetNS takes
	Close() error
}

// PodRuntime is a Runtime that makes pods.
type PodRuntime interface {
	Runtime
	NewPod(ctx context.Context) (Pod, error)
}

// Runtime creates containers.
type Runtime interface {
	// Create starts a container whose PID 1 is spec.Process. It returns
	// once the process has been started, or with the reason it could not
	// be (a missing command, an unknown user, a failed mount).
	Create(ctx context.Context, spec Spec) (Container, error)
}

// Container is a running (or ended) container.
//
// Its life is Create → Wait → Delete: Wait blocks until PID 1 exits (when
// PID 1 exits the kernel kills every other process of the container), and
// Delete always runs, on success, failure and cancellation, to remove the
// container's cgroups and state. While PID 1 runs, Exec starts further
// processes in it (when created with Spec.Exec).
type Container interface {
	ID() string
	// Pid returns the host PID of the container's PID 1.
	Pid() int
	// Wait waits for PID 1 to exit. When ctx ends first, every process of
	// the container is killed and Status.Cancelled is set.
	Wait(ctx context.Context) (Status, error)
	// Exec runs p in the running container and waits for it to exit.
	Exec(ctx context.Context, p Process) (Status, error)
	// Kill kills every process of the container.
	Kill(ctx context.Context) error
	// Delete kills what still runs and removes the container's cgroups
	// and state. It is safe to call more than once.
	Delete(ctx context.Context) error
}

// ValidID reports whether id can name a container or snapshot: 1 to 128
// characters of letters, digits, '_', '.' and '-', starting with a letter
// or digit.
func ValidID(id string) error {
	ok := len(id) >= 1 && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("invalid name %q: use 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}
