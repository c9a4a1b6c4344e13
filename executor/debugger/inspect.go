package debugger

import (
	"archive/tar"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/internal/regfile"
)

func inspectCommands() []command {
	return []command{
		{name: "diff", usage: "diff: what the step changed (or, before it, its parent): files added, modified, deleted", run: diff},
		{name: "cat", usage: "cat [--before] PATH: a file of the step's filesystem, without a container", run: cat},
		{name: "ls", usage: "ls [--before] [PATH]: a directory of the step's filesystem, without a container", run: ls},
		{name: "env", usage: "the step's environment, workdir and user", run: env},
		{name: "log", usage: "log [-n N]: the step's output (the last N lines)", run: logCmd},
		{name: "cache", usage: "the step's cache key", run: cacheCmd},
	}
}

// change is one entry of a step's diff.
type change struct {
	op   byte // 'A', 'M', 'D'
	path string
	size int64
	dir  bool
}

func (c change) String() string {
	switch {
	case c.op == 'D':
		return fmt.Sprintf("D %s", c.path)
	case c.dir:
		return fmt.Sprintf("%c %s/", c.op, c.path)
	}
	return fmt.Sprintf("%c %s (%d B)", c.op, c.path, c.size)
}

// changes reads what the view's Diff lists.
func changes(ctx context.Context, v *executor.NodeView) ([]change, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(v.Diff(ctx, pw)) }()
	defer pr.Close()
	lower := openRoots(v.Lower())
	defer closeRoots(lower)
	var out []change
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("reading the changes: %w", err)
		}
		p := path.Clean("/" + h.Name)
		base := path.Base(p)
		if base == ".wh..wh..opq" {
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			out = append(out, change{op: 'D', path: path.Join(path.Dir(p), name)})
			continue
		}
		c := change{op: 'A', path: p, size: h.Size, dir: h.Typeflag == tar.TypeDir}
		if existed(lower, p) {
			if c.dir {
				continue // a directory a file was added to
			}
			c.op = 'M'
		}
		if p == "/" {
			continue
		}
		out = append(out, c)
	}
}

// openRoots opens the layer directories dirs (base first), leaving out
// those it cannot open.
func openRoots(dirs []string) []*os.Root {
	var roots []*os.Root
	for _, d := range dirs {
		if r, err := os.OpenRoot(d); err == nil {
			roots = append(roots, r)
		}
	}
	return roots
}

func closeRoots(roots []*os.Root) {
	for _, r := range roots {
		r.Close()
	}
}

// existed reports whether p is in the layers (base first). A layer's
// symlinks are followed in that layer only: an absolute one, or one out
// of it, is never read on the host. As in overlayfs, a layer where a
// parent of p is not a directory (a file, a whiteout, such a symlink)
// hides the layers below it.
func existed(layers []*os.Root, p string) bool {
	name := strings.TrimPrefix(p, "/")
	if name == "" {
		name = "."
	}
	for i := len(layers) - 1; i >= 0; i-- {
		fi, err := layers[i].Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false
		}
		// A 0/0 character device is a deletion.
		st, ok := fi.Sys().(*syscall.Stat_t)
		return !(ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0)
	}
	return false
}

func diff(ctx context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	return d.printDiff(ctx, s.v)
}

func (d *Debugger) printDiff(ctx context.Context, v *executor.NodeView) error {
	cs, err := changes(ctx, v)
	if err != nil {
		return err
	}
	label := v.Changes
	if v.Snapshot != "" {
		label = v.Name + " (failed)"
	}
	if label == "" {
		fmt.Fprintln(d.out, "no changes to show: the step has not run, and its parent made no layer")
		return nil
	}
	fmt.Fprintf(d.out, "changes of %q: %d\n", label, len(cs))
	for _, c := range cs {
		fmt.Fprintln(d.out, "  "+c.String())
	}
	return nil
}

// before takes a leading --before flag.
func before(args []string) (bool, []string) {
	if len(args) > 0 && args[0] == "--before" {
		return true, args[1:]
	}
	return false, args
}

func cat(ctx context.Context, d *Debugger, s *stop, args []string, _ string) error {
	b, args := before(args)
	if len(args) != 1 {
		return errors.New("usage: cat [--before] PATH")
	}
	return s.v.Mounted(ctx, b, func(root string) error {
		// As the step sees it: links resolve inside its root, and only a
		// regular file is read (a FIFO would hang the debugger).
		f, err := regfile.OpenInRoot(root, rel(args[0], s.v.Workdir))
		if err != nil {
			return fmt.Errorf("opening %s: %w", args[0], unroot(err))
		}
		defer f.Close()
		_, err = io.Copy(d.out, io.LimitReader(f, 1<<20))
		return err
	})
}

func ls(ctx context.Context, d *Debugger, s *stop, args []string, _ string) error {
	b, args := before(args)
	p := s.v.Workdir
	if len(args) > 0 {
		p = args[0]
	}
	return s.v.Mounted(ctx, b, func(root string) error {
		r, err := os.OpenRoot(root)
		if err != nil {
			return err
		}
		defer r.Close()
		ents, err := fs.ReadDir(r.FS(), rel(p, s.v.Workdir))
		if err != nil {
			return fmt.Errorf("listing %s: %w", p, unroot(err))
		}
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				continue
			}
			name := e.Name()
			if fi.IsDir() {
				name += "/"
			}
			fmt.Fprintf(d.out, "%s %8d %s\n", fi.Mode(), fi.Size(), name)
		}
		return nil
	})
}

// rel makes p, absolute or relative to wd, relative to the root.
func rel(p, wd string) string {
	if !path.IsAbs(p) {
		p = path.Join("/", wd, p)
	}
	r := strings.TrimPrefix(path.Clean(p), "/")
	if r == "" {
		return "."
	}
	return r
}

// unroot drops the private mountpoint from a path error.
func unroot(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func env(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	for _, e := range s.v.Env {
		fmt.Fprintln(d.out, e)
	}
	fmt.Fprintf(d.out, "workdir: %s\nuser: %s\n", orDefault(s.v.Workdir, "/"), orDefault(s.v.User, "root"))
	if len(s.v.Command) > 0 {
		fmt.Fprintf(d.out, "command: %s\n", shellOf(s.v.Command))
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func logCmd(_ context.Context, d *Debugger, s *stop, args []string, _ string) error {
	fl := flag.NewFlagSet("log", flag.ContinueOnError)
	fl.SetOutput(d.out)
	n := fl.Int("n", 0, "the last N lines")
	if err := fl.Parse(args); err != nil {
		return err
	}
	out := d.output(s.v.Node)
	if out == "" {
		out = s.v.Output
	}
	if out == "" {
		fmt.Fprintln(d.out, "no output")
		return nil
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if *n > 0 && len(lines) > *n {
		lines = lines[len(lines)-*n:]
	}
	fmt.Fprintln(d.out, strings.Join(lines, "\n"))
	return nil
}

func cacheCmd(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	if s.v.CacheKey == "" {
		fmt.Fprintln(d.out, "no cache key yet")
		return nil
	}
	fmt.Fprintf(d.out, "cache key %s\n", s.v.CacheKey)
	return nil
}

// report prints what a failed step changed, and keeps its filesystem,
// when there is no prompt.
func (d *Debugger) report(ctx context.Context, v *executor.NodeView) {
	if err := d.printDiff(ctx, v); err != nil {
		fmt.Fprintf(d.out, "  reading its changes: %v\n", err)
	}
	if d.opts.Keep == nil || v.Snapshot == "" {
		return
	}
	name, err := d.opts.Keep(ctx, v)
	if err != nil {
		fmt.Fprintf(d.out, "  keeping its filesystem: %v\n", err)
		return
	}
	attach := "kiln debug attach " + name
	if d.opts.AttachCommand != nil {
		attach = d.opts.AttachCommand(name)
	}
	fmt.Fprintf(d.out, "kept the failed step's filesystem as %s: %s opens a shell in it\n", name, attach)
}
