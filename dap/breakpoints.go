package dap

import (
	"fmt"
	"path/filepath"

	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/manifest"
)

// nodePos is where the user wrote node n: a step's or a test's position.
func nodePos(n *dag.Node) manifest.Pos {
	switch {
	case n == nil:
	case n.Step != nil:
		return n.Step.Pos
	case n.Test != nil:
		return n.Test.Pos
	}
	return manifest.Pos{}
}

// position returns where the user wrote node, or the zero Pos.
func (s *session) position(node string) manifest.Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.graph == nil {
		return manifest.Pos{}
	}
	return nodePos(s.graph.Node(node))
}

func source(path string) *godap.Source {
	return &godap.Source{Name: filepath.Base(path), Path: path}
}

// setBreakpoints replaces the breakpoints of one file. A breakpoint is
// verified when a step or test the build runs starts at its line: in
// that file, or, for a module's steps, at a use: line that inlined them.
func (s *session) setBreakpoints(args godap.SetBreakpointsArguments) []godap.Breakpoint {
	file := filepath.Clean(args.Source.Path)
	lines := args.Lines
	if args.Breakpoints != nil {
		lines = lines[:0:0]
		for _, b := range args.Breakpoints {
			lines = append(lines, b.Line)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	steps := map[int]bool{} // lines of file where a step starts
	if s.graph != nil {
		for _, n := range s.graph.Needed() {
			pos := nodePos(n)
			for p := &pos; p != nil; p = p.Caller {
				if p.File != "" && filepath.Clean(p.File) == file {
					steps[p.Line] = true
				}
			}
		}
	}
	set := map[int]int{}
	out := make([]godap.Breakpoint, 0, len(lines))
	for _, l := range lines {
		s.nextID++
		b := godap.Breakpoint{Id: s.nextID, Line: l, Source: source(file), Verified: steps[l]}
		if b.Verified {
			set[l] = b.Id
		} else {
			b.Message = fmt.Sprintf("no step starts at line %d of %s: put the breakpoint on the first line of a step", l, filepath.Base(file))
		}
		out = append(out, b)
	}
	s.breaks[file] = set
	return out
}

// hit returns the ID of the breakpoint at pos or at one of its callers,
// or 0. The caller holds s.mu.
func (s *session) hit(pos manifest.Pos) int {
	for p := &pos; p != nil; p = p.Caller {
		if id := s.breaks[filepath.Clean(p.File)][p.Line]; id != 0 {
			return id
		}
	}
	return 0
}
