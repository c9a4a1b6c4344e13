package snapshot

import (
	"github.com/kiln-build/kiln/internal/rootless"

	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/engine"
	"github.com/kiln-build/kiln/image/layer"
)

// overlayOptions turn off the overlayfs features that keep changes out of
// the upperdir (redirects, metadata-only copy-up) so that the upperdir is
// always the whole diff.
const overlayOptions = "index=off,redirect_dir=off,metacopy=off"

// overlay is the overlayfs snapshotter: the parents are the lowerdirs, a
// fresh upperdir takes the writes, and the upperdir is the diff.
type overlay struct{ base }

var (
	_ engine.Snapshotter = (*overlay)(nil)
	_ engine.Committer   = (*overlay)(nil)
)

// Writable returns the upperdir: in overlay form, and exactly the
// snapshot's changes.
func (o *overlay) Writable(ctx context.Context, key string) (string, error) {
	if err := o.exists(key); err != nil {
		return "", err
	}
	return o.path(key, "upper"), nil
}

func (o *overlay) Prepare(ctx context.Context, key string, parents []string) ([]engine.Mount, error) {
	for _, p := range parents {
		if strings.ContainsAny(p, ":,") {
			return nil, fmt.Errorf("preparing snapshot %s: layer path %q holds ':' or ','", key, p)
		}
	}
	if err := o.create(key); err != nil {
		return nil, err
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.Mkdir(o.path(key, d), 0o755); err != nil {
			o.Remove(ctx, key) //nolint:errcheck // reporting the first error
			return nil, fmt.Errorf("preparing snapshot %s: %w", key, err)
		}
	}
	if err := o.writeParents(key, parents); err != nil {
		o.Remove(ctx, key) //nolint:errcheck // reporting the first error
		return nil, fmt.Errorf("preparing snapshot %s: %w", key, err)
	}
	return o.Mounts(ctx, key)
}

func (o *overlay) Mounts(ctx context.Context, key string) ([]engine.Mount, error) {
	if err := o.exists(key); err != nil {
		return nil, err
	}
	parents, err := o.readParents(key)
	if err != nil {
		return nil, err
	}
	upper := o.path(key, "upper")
	if len(parents) == 0 {
		// FROM scratch: overlayfs needs a lowerdir; the upperdir alone is
		// the whole filesystem.
		return []engine.Mount{{Type: "bind", Source: upper, Options: []string{"rbind", "rw"}}}, nil
	}
	lowers := make([]string, len(parents))
	for i, p := range parents {
		lowers[len(parents)-1-i] = p // overlayfs wants the nearest first
	}
	opts := []string{
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + upper,
		"workdir=" + o.path(key, "work"),
		overlayOptions,
	}
	if volatileOverlays() {
		// Unmounting a volatile overlay does not sync the upperdir's
		// file system (a step's 200 MB took 0.2 s there), and nothing
		// else does: the store records which boot wrote a layer
		// directory and hashes it whole on its first use in a later
		// boot (see package store's Integrity).
		// overlayfs refuses to mount an upper/work pair again after a
		// volatile mount until work/incompat/volatile is gone; this
		// process made it, and no crash came in between.
		if err := os.RemoveAll(o.path(key, "work", "work", "incompat")); err != nil {
			return nil, fmt.Errorf("mounts of snapshot %s: %w", key, err)
		}
		opts = append(opts, "volatile")
	}
	return []engine.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

// volatileOverlays reports whether overlayfs takes the volatile option
// (Linux 5.10 and later).
func volatileOverlays() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	var major, minor int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > 5 || major == 5 && minor >= 10
}

func (o *overlay) Diff(ctx context.Context, key string, w io.Writer, opts engine.DiffOptions) error {
	if err := o.exists(key); err != nil {
		return err
	}
	var lo []layer.Option
	if opts.SourceDateEpoch != nil {
		lo = append(lo, layer.WithSourceDateEpoch(*opts.SourceDateEpoch))
	}
	if err := layer.WriteOverlayDiff(ctx, w, o.path(key, "upper"), lo...); err != nil {
		return fmt.Errorf("diffing snapshot %s: %w", key, err)
	}
	return nil
}

// probePrefix starts the names of the directories probeOverlay makes:
// probePrefix + pid + "-" + random.
const probePrefix = ".probe-"

// probeOverlay mounts a tiny overlay under dir, in a throwaway mount
// namespace, to learn whether overlayfs works on dir's filesystem.
func probeOverlay(dir string) error {
	// Named after this process, so that Sweep removes it at once if the
	// process dies before it does.
	tmp, err := os.MkdirTemp(dir, probePrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return fmt.Errorf("probing overlayfs: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(tmp+"/"+d, 0o755); err != nil {
			return fmt.Errorf("probing overlayfs: %w", err)
		}
	}
	return inPrivateMountNS(func() error {
		data := fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work,%s", tmp, tmp, tmp, overlayOptions)
		data = rootless.OverlayOptions(data)
		if err := unix.Mount("overlay", tmp+"/merged", "overlay", 0, data); err != nil {
			return fmt.Errorf("overlayfs does not mount on %s: %w", dir, err)
		}
		return unix.Unmount(tmp+"/merged", unix.MNT_DETACH)
	})
}
