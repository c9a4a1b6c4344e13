package debugger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/executor"
)

// breakpoint stops before a step: at a line (of any file, or of the file
// named), or at a step given by its node key ("main/2") or a part of its
// name ("echo hi").
type breakpoint struct {
	spec string
	file string
	line int
	step string
}

func breakCommands() []command {
	return []command{
		{name: "break", alias: "b", usage: "break LINE|FILE:LINE|STEP|on-fail: stop before that step (or on failures)", run: breakCmd},
		{name: "breakpoints", usage: "list the breakpoints", run: listBreaks},
		{name: "clear", usage: "clear [SPEC|on-fail]: remove one breakpoint, or all", run: clearCmd},
		{name: "list", alias: "l", usage: "the file around the current step", run: list},
	}
}

func parseBreak(spec string) (breakpoint, error) {
	b := breakpoint{spec: spec}
	file, line, ok := strings.Cut(spec, ":")
	if !ok {
		file, line = "", spec
	}
	if n, err := strconv.Atoi(line); err == nil {
		if n <= 0 {
			return b, fmt.Errorf("line %d: lines start at 1", n)
		}
		b.file, b.line = file, n
		return b, nil
	}
	if spec == "" {
		return b, errors.New("usage: break LINE|FILE:LINE|STEP|on-fail")
	}
	b.step = spec
	return b, nil
}

func (d *Debugger) addBreak(spec string) error {
	if spec == "on-fail" {
		d.onFail = true
		return nil
	}
	b, err := parseBreak(spec)
	if err != nil {
		return err
	}
	d.breaks = append(d.breaks, b)
	return nil
}

func (b breakpoint) matches(v *executor.NodeView) bool {
	if b.step != "" {
		return b.step == v.Node || strings.Contains(v.Name, b.step)
	}
	// A module's step is at its line of the module and, through
	// Pos.Caller, at each use: line that inlined it. A bare LINE is a
	// line of the manifest itself: the outermost position.
	for p := &v.Pos; p != nil; p = p.Caller {
		if b.atLine(p.File, p.Line, p.Caller == nil) {
			return true
		}
	}
	return false
}

// atLine reports whether a line breakpoint names line of file, which is
// the manifest's own file when outer (a bare LINE names only those).
func (b breakpoint) atLine(file string, line int, outer bool) bool {
	switch {
	case b.step != "" || b.line != line:
		return false
	case b.file == "":
		return outer
	}
	return b.file == file || b.file == filepath.Base(file)
}

// matching returns the first breakpoint at v, or nil.
func (d *Debugger) matching(v *executor.NodeView) *breakpoint {
	for i := range d.breaks {
		if d.breaks[i].matches(v) {
			return &d.breaks[i]
		}
	}
	return nil
}

func breakCmd(_ context.Context, d *Debugger, _ *stop, args []string, _ string) error {
	if len(args) != 1 {
		return errors.New("usage: break LINE|FILE:LINE|STEP|on-fail")
	}
	if err := d.addBreak(args[0]); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "breakpoint %s\n", args[0])
	return nil
}

func listBreaks(_ context.Context, d *Debugger, _ *stop, _ []string, _ string) error {
	for i, b := range d.breaks {
		fmt.Fprintf(d.out, "%d: %s\n", i+1, b.spec)
	}
	if d.onFail {
		fmt.Fprintln(d.out, "on-fail")
	}
	return nil
}

func clearCmd(_ context.Context, d *Debugger, _ *stop, args []string, _ string) error {
	if len(args) == 0 {
		d.breaks = nil
		fmt.Fprintln(d.out, "cleared every breakpoint")
		return nil
	}
	if args[0] == "on-fail" {
		d.onFail = false
		return nil
	}
	for i, b := range d.breaks {
		if b.spec == args[0] || strconv.Itoa(i+1) == args[0] {
			d.breaks = append(d.breaks[:i], d.breaks[i+1:]...)
			fmt.Fprintf(d.out, "cleared %s\n", b.spec)
			return nil
		}
	}
	return fmt.Errorf("no breakpoint %s", args[0])
}

// list shows the lines around the current step, "=>" at its line and
// "*" at breakpoints.
func list(_ context.Context, d *Debugger, s *stop, _ []string, _ string) error {
	v := s.v
	if v.Pos.File == "" || v.Pos.Line == 0 {
		return fmt.Errorf("%s has no position", v.Node)
	}
	lines, ok := d.files[v.Pos.File]
	if !ok {
		b, err := os.ReadFile(v.Pos.File)
		if err != nil {
			return fmt.Errorf("reading %s: %w", v.Pos.File, err)
		}
		lines = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		d.files[v.Pos.File] = lines
	}
	from, to := max(1, v.Pos.Line-5), min(len(lines), v.Pos.Line+5)
	for n := from; n <= to; n++ {
		mark := "  "
		if n == v.Pos.Line {
			mark = "=>"
		}
		bp := " "
		for _, b := range d.breaks {
			// A bare LINE is the manifest's, not a module's.
			if b.atLine(v.Pos.File, n, v.Pos.Caller == nil) {
				bp = "*"
			}
		}
		fmt.Fprintf(d.out, "%s%s%4d  %s\n", mark, bp, n, lines[n-1])
	}
	return nil
}
