package dap

import (
	"fmt"
	"path/filepath"
	"strings"

	godap "github.com/google/go-dap"

	"github.com/kiln-build/kiln/dag"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/internal/regfile"
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

// position returns where the user wrote node, with its column, or the
// zero Pos.
func (s *session) position(node string) manifest.Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.graph == nil {
		return manifest.Pos{}
	}
	pos := nodePos(s.graph.Node(node))
	pos.Col = s.column(pos)
	return pos
}

// column returns the 1-based column where the user wrote what is at
// pos (DAP's columnsStartAt1, the default): pos.Col, or, for a position
// that has only a line (a Dockerfile's instructions: BuildKit's parser
// keeps no column), where the line's text starts. The caller holds s.mu.
func (s *session) column(pos manifest.Pos) int {
	if pos.Col > 0 || pos.File == "" || pos.Line <= 0 {
		return pos.Col
	}
	lines, ok := s.files[pos.File]
	if !ok {
		// The manifest, read once; one that cannot be read has column 1.
		if b, err := regfile.ReadPath(pos.File); err == nil {
			lines = strings.Split(string(b), "\n")
		}
		s.files[pos.File] = lines
	}
	if pos.Line > len(lines) {
		return 1
	}
	line := lines[pos.Line-1]
	return len(line) - len(strings.TrimLeft(line, " \t")) + 1
}

func source(path string) *godap.Source {
	return &godap.Source{Name: filepath.Base(path), Path: path}
}

// setBreakpoints replaces the breakpoints of one file. A breakpoint is
// verified when a step or test the build can stop at starts at its line:
// in that file, or, for a module's steps, at a use: line that inlined
// them. A step that only sets the image's config (CMD, ENV, LABEL…) is
// never stopped at (executor.Stops): a breakpoint there is not verified,
// and says so.
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
	steps := map[int]bool{}        // lines of file where a step that stops starts
	configOnly := map[int]string{} // lines of file where a config-only step starts: its name
	if s.graph != nil {
		for _, n := range s.graph.Needed() {
			pos := nodePos(n)
			for p := &pos; p != nil; p = p.Caller {
				if p.File == "" || filepath.Clean(p.File) != file {
					continue
				}
				if executor.Stops(n) {
					steps[p.Line] = true
				} else if configOnly[p.Line] == "" {
					configOnly[p.Line] = n.Name
				}
			}
		}
	}
	set := map[int]int{}
	out := make([]godap.Breakpoint, 0, len(lines))
	for _, l := range lines {
		s.nextID++
		b := godap.Breakpoint{Id: s.nextID, Line: l, Source: source(file), Verified: steps[l]}
		switch {
		case b.Verified:
			set[l] = b.Id
		case configOnly[l] != "":
			b.Message = fmt.Sprintf("%s only sets the image's config: no step runs at line %d, so the build cannot stop there; put the breakpoint on a step that runs (RUN, COPY, ADD, WORKDIR; run:, copy:, template:) or a test", configOnly[l], l)
		default:
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
