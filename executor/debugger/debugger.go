package debugger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/fsm"
)

// Options configure a Debugger.
type Options struct {
	// In is where commands are read, line by line; Out where the prompt
	// and the commands' output go.
	In  io.Reader
	Out io.Writer
	// Observer is told of every event and output, as if there were no
	// debugger. It may be nil.
	Observer fsm.Observer
	// Prompt opens the prompt when the build stops. Without it, a failed
	// step is reported (output, changes) and the build goes on failing.
	Prompt bool
	// NoEntry does not stop on entry: only at breakpoints and failures.
	NoEntry bool
	// Breaks are breakpoints, as the break command takes them.
	Breaks []string
	// Keep, when set, keeps a failed step's filesystem when there is no
	// prompt (NodeView.Image, tagged somewhere) and returns the name it
	// is kept under, which the report prints.
	Keep func(ctx context.Context, v *executor.NodeView) (string, error)
	// AttachCommand is the command line that opens a shell on the step
	// kept as name, for the report. The default is
	// "kiln debug attach NAME".
	AttachCommand func(name string) string
	// Screen, when set, is what else draws on Out's terminal (the live
	// progress view): it is held while the debugger speaks, from the
	// moment a step stops until the build goes on. It may be nil.
	Screen Screen
}

// Screen is a live view that shares the debugger's terminal, and must
// stop drawing while the debugger has it: its prompt, a shell, the
// report of a failed step.
type Screen interface {
	// Hold stops drawing, node being the step stopped and why what
	// stopped it ("at breakpoint 4"), until release is called; then it
	// draws again, under what the debugger wrote.
	Hold(node, why string) (release func())
}

// Debugger is an executor.Inspector with a prompt.
type Debugger struct {
	opts Options
	in   *input
	out  io.Writer

	mu       sync.Mutex // one prompt at a time
	breaks   []breakpoint
	onFail   bool
	entered  bool
	stepping bool
	quit     bool
	files    map[string][]string // source files, by path, for list

	outMu   sync.Mutex // Output comes while a prompt is open
	outputs map[string]*strings.Builder

	gate *gate // holds the other branches at a stop
}

var _ executor.Inspector = (*Debugger)(nil)

// New returns a debugger.
func New(opts Options) (*Debugger, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.In == nil {
		opts.In = strings.NewReader("")
	}
	if opts.Observer == nil {
		opts.Observer = fsm.Observers(nil)
	}
	d := &Debugger{opts: opts, in: newInput(opts.In), out: opts.Out, onFail: true,
		files: map[string][]string{}, outputs: map[string]*strings.Builder{}, gate: newGate()}
	for _, b := range opts.Breaks {
		if err := d.addBreak(b); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Event passes e on, then notes it, to tell what runs at a stop and to
// move the focus on: in this order, the progress output says a node
// ended before a node the end lets go says anything.
func (d *Debugger) Event(e fsm.Event) {
	d.opts.Observer.Event(e)
	d.gate.note(e)
}

// Output passes a node's output on.
func (d *Debugger) Output(node string, p []byte) {
	d.opts.Observer.Output(node, p)
	d.outMu.Lock()
	defer d.outMu.Unlock()
	b := d.outputs[node]
	if b == nil {
		b = &strings.Builder{}
		d.outputs[node] = b
	}
	b.Write(p)
	if b.Len() > 2*keepOutput {
		s := b.String()[b.Len()-keepOutput:]
		b.Reset()
		b.WriteString(s)
	}
}

// keepOutput is how much of each node's output log can show.
const keepOutput = 256 << 10

// forget drops node's output, before it runs again.
func (d *Debugger) forget(node string) {
	d.outMu.Lock()
	delete(d.outputs, node)
	d.outMu.Unlock()
}

// output is what node has written.
func (d *Debugger) output(node string) string {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	if b := d.outputs[node]; b != nil {
		return b.String()
	}
	return ""
}

// stop is one stop of the build at a step.
type stop struct {
	v      *executor.NodeView
	after  bool // after the step ran (it failed)
	action *executor.Action
	all    bool // the other branches run on (continue --all, quit)
	// shelled: a shell ran at this stop, whose changes commit keeps.
	shelled bool
}

// Before stops before a step on entry, after next, and at breakpoints.
// While another step is stopped, or another branch has the focus, it
// waits first (see gate).
func (d *Debugger) Before(ctx context.Context, v *executor.NodeView) executor.Action {
	for {
		d.gate.wait(ctx, v)
		d.mu.Lock()
		if d.quit {
			d.mu.Unlock()
			return executor.Action{Kind: executor.Abort}
		}
		why := ""
		switch {
		case !d.entered && !d.opts.NoEntry:
			why = "on entry"
		case d.stepping:
			why = "after next"
		default:
			if b := d.matching(v); b != nil {
				why = "at breakpoint " + b.spec
			}
		}
		if why == "" || !d.opts.Prompt {
			d.entered = true
			d.mu.Unlock()
			return executor.Action{Kind: executor.Continue}
		}
		if !d.gate.stop(v.Node) {
			d.mu.Unlock()
			continue // another branch stopped first
		}
		d.entered = true
		defer d.hold(v.Node, why)()
		fmt.Fprintf(d.out, "stopped at %s (%s), before %q [%s]\n", where(v), why, v.Name, v.Node)
		if v.Cached || v.CacheKey != "" {
			fmt.Fprintf(d.out, "  cache key %s\n", short(v.CacheKey))
		}
		return d.prompt(ctx, &stop{v: v})
	}
}

// After stops when a step failed.
func (d *Debugger) After(ctx context.Context, v *executor.NodeView) executor.Action {
	for {
		if v.Err == nil || errors.Is(v.Err, context.Canceled) || ctx.Err() != nil {
			return executor.Action{Kind: executor.Continue}
		}
		d.gate.wait(ctx, v)
		d.mu.Lock()
		if d.quit || !d.onFail {
			d.mu.Unlock()
			return executor.Action{Kind: executor.Continue}
		}
		if !d.gate.stop(v.Node) {
			d.mu.Unlock()
			continue
		}
		defer d.hold(v.Node, "after it failed")()
		fmt.Fprintf(d.out, "step failed at %s: %q [%s]\n", where(v), v.Name, v.Node)
		if v.ExitCode >= 0 {
			fmt.Fprintf(d.out, "  exit code %d\n", v.ExitCode)
		}
		if v.Output != "" {
			fmt.Fprintf(d.out, "  last output:\n    %s\n", strings.ReplaceAll(v.Output, "\n", "\n    "))
		}
		if !d.opts.Prompt {
			d.report(ctx, v)
			d.gate.resume(v.Node, true)
			d.mu.Unlock()
			return executor.Action{Kind: executor.Continue}
		}
		return d.prompt(ctx, &stop{v: v, after: true})
	}
}

// hold holds the screen, if there is one, for a stop at node; the
// function it returns releases it.
func (d *Debugger) hold(node, why string) func() {
	if d.opts.Screen == nil {
		return func() {}
	}
	return d.opts.Screen.Hold(node, why)
}

// prompt runs the prompt of stop s, whose gate is open and d.mu held,
// then lets the build go on as the user chose.
func (d *Debugger) prompt(ctx context.Context, s *stop) executor.Action {
	defer d.mu.Unlock()
	d.gate.printOthers(d.out, s.v.Node)
	act := d.repl(ctx, s)
	d.gate.resume(s.v.Node, s.all || act.Kind == executor.Abort)
	return act
}

// repl reads commands until one lets the build go on.
func (d *Debugger) repl(ctx context.Context, s *stop) executor.Action {
	for {
		fmt.Fprint(d.out, "(kiln) ")
		line, err := d.in.line()
		if err != nil {
			// The input ended: as if quit was typed.
			fmt.Fprintln(d.out, "\nend of input: quitting")
			d.quit, s.all = true, true
			return executor.Action{Kind: executor.Abort}
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		cmd, ok := lookup(fields[0])
		if !ok {
			fmt.Fprintf(d.out, "unknown command %q: type help\n", fields[0])
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
		if err := cmd.run(ctx, d, s, fields[1:], rest); err != nil {
			fmt.Fprintf(d.out, "%s: %v\n", cmd.name, err)
			continue
		}
		if s.action != nil {
			return *s.action
		}
	}
}

// command is one debugger command.
type command struct {
	name, alias string
	usage       string
	run         func(ctx context.Context, d *Debugger, s *stop, args []string, rest string) error
}

func commands() []command {
	var cs []command
	cs = append(cs, flowCommands()...)
	cs = append(cs, breakCommands()...)
	cs = append(cs, inspectCommands()...)
	cs = append(cs, shellCommands()...)
	cs = append(cs, command{name: "graph", alias: "g", usage: "where the step sits in the graph: its parents, children, and the nodes that run in parallel", run: graphCmd})
	cs = append(cs, command{name: "help", alias: "h", usage: "help: this list", run: help})
	return cs
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name || c.alias != "" && c.alias == name {
			return c, true
		}
	}
	return command{}, false
}

// branchHelp says what the other branches do at a stop.
const branchHelp = `Parallel branches: while a step is stopped, no other step or test starts;
one whose container already runs ends, then waits. After continue, next,
skip, retry, edit or commit, this branch goes on alone: the others wait
until it stops again or ends. continue --all lets every branch run on,
each stopping at its own breakpoints. Tests stop at breakpoints too.
`

func help(_ context.Context, d *Debugger, _ *stop, _ []string, _ string) error {
	for _, c := range commands() {
		alias := ""
		if c.alias != "" {
			alias = " (" + c.alias + ")"
		}
		fmt.Fprintf(d.out, "  %-10s%s %s\n", c.name, alias, c.usage)
	}
	fmt.Fprint(d.out, branchHelp)
	fmt.Fprint(d.out, commitHelp)
	return nil
}

// where is the step's position, as the user wrote it.
func where(v *executor.NodeView) string {
	switch {
	case v.Pos.File == "":
		return v.Node
	case v.Pos.Line == 0:
		return v.Pos.File
	}
	return fmt.Sprintf("%s:%d", v.Pos.File, v.Pos.Line)
}

func short(key string) string {
	if len(key) > 16 {
		return key[:16]
	}
	return key
}

// IsTerminal reports whether r is a terminal.
func IsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
