package manifest

import (
	"sort"
	"strconv"
	"strings"
)

// This file turns a Jinja2-flavoured template into one pongo2 can run,
// strictly. It is a small scanner, not a parser: it finds the text, the
// {{ expressions }}, the {% tags %} and the {# comments #}, tokenizes the
// expressions and rewrites:
//
//   - every variable reference (a.b.c) into a call _kiln_v(N), N indexing
//     a table of references with their positions, so that looking up a
//     name that is not defined is an error naming it and where it was
//     written (pongo2 alone renders it as "");
//   - x is defined / x is not defined into _kiln_d(N) / not _kiln_d(N);
//   - Jinja2 filter calls |f(arg) into pongo2's |f:arg (|f() into |f), and
//     the Jinja2 names d, count, int into default, length, integer;
//   - m.items() and m.keys() into m (pongo2 iterates a map's keys, or its
//     keys and values with two loop variables);
//   - True and False into true and false;
//   - {% else %} directly inside a {% for %} into pongo2's {% empty %}.
//
// loop.index, loop.index0, loop.revindex, loop.revindex0, loop.first,
// loop.last and loop.length are resolved by _kiln_v itself.
//
// With markers on, it also appends a marker naming the template line at
// the end of every line that ends in text, so that each line of the
// rendered output can be traced back to the template line that produced
// it (see lineMap).

const (
	markStart = '\uE000'
	markEnd   = '\uE001'
)

type refMode int

const (
	refStrict  refMode = iota // undefined is an error
	refDefault                // undefined is nil (the expression is filtered by default)
	refTest                   // "is defined": the call returns a bool
)

// ref is a variable reference the template makes.
type ref struct {
	path []string
	pos  Pos
	mode refMode
	iter bool // the reference is what a {% for %} iterates over
}

// onlyRef reports whether ts is one variable reference: a.b.0, maybe
// followed by .items() or .keys().
func onlyRef(ts []tok) bool {
	var l []tok
	for _, t := range ts {
		if t.kind != 'w' {
			l = append(l, t)
		}
	}
	if len(l) == 0 || l[0].kind != 'i' {
		return false
	}
	for i := 1; i < len(l); i += 2 {
		if !is(l, i, ".") || i+1 >= len(l) {
			return false
		}
		if l[i+1].kind == 'i' && (l[i+1].s == "items" || l[i+1].s == "keys") && is(l, i+2, "(") && is(l, i+3, ")") && i+4 == len(l) {
			return true
		}
		if l[i+1].kind != 'i' && l[i+1].kind != 'n' {
			return false
		}
	}
	return true
}

// edit records that src[srcOff:srcEnd] became out[outOff:outEnd].
type edit struct {
	srcOff, srcEnd int
	outOff, outEnd int
}

// source is a rewritten template and how to map its positions back.
type source struct {
	file    string // the name errors show
	lineOff int    // added to template lines to get file lines
	src     string
	out     string
	edits   []edit

	unclosed *block // the innermost block tag left open, if any
}

// rewriter rewrites one template; refs are appended to a table shared by
// every template of one rendering.
type rewriter struct {
	refs    *[]ref
	s       *source
	b       strings.Builder
	markers bool
	blocks  []block // open block tags
}

// block is a block tag ({% for %}) that is open.
type block struct {
	name string
	pos  Pos
}

// blockTags are pongo2's tags that need an {% endNAME %}.
var blockTags = map[string]bool{
	"for": true, "if": true, "ifequal": true, "ifnotequal": true, "ifchanged": true, "with": true,
	"macro": true, "block": true, "filter": true, "spaceless": true, "autoescape": true, "comment": true,
}

func rewrite(refs *[]ref, file string, lineOff int, src string, prefix string, markers bool) *source {
	s := &source{file: file, lineOff: lineOff, src: src}
	w := &rewriter{refs: refs, s: s, markers: markers}
	if prefix != "" {
		w.insert(0, prefix)
	}
	w.template()
	s.out = w.b.String()
	if len(w.blocks) > 0 {
		s.unclosed = &w.blocks[len(w.blocks)-1]
	}
	return s
}

// copyText copies src[a:b] verbatim.
func (w *rewriter) copyText(a, b int) { w.b.WriteString(w.s.src[a:b]) }

// replace writes repl in place of src[a:b].
func (w *rewriter) replace(a, b int, repl string) {
	o := w.b.Len()
	w.b.WriteString(repl)
	w.s.edits = append(w.s.edits, edit{srcOff: a, srcEnd: b, outOff: o, outEnd: w.b.Len()})
}

func (w *rewriter) insert(at int, text string) { w.replace(at, at, text) }

func (w *rewriter) template() {
	src := w.s.src
	line := 1
	trimNext := false // the last tag ended with -%}, -}} or -#}
	i := 0
	for i < len(src) {
		j := strings.IndexAny(src[i:], "{\n")
		if j < 0 {
			w.copyText(i, len(src))
			return
		}
		j += i
		w.copyText(i, j)
		if src[j] == '\n' {
			if w.markers && !(trimNext && strings.TrimSpace(src[lastTagEnd(src, j):j]) == "") && !trimsLeft(src[j+1:]) {
				w.insert(j, string(markStart)+strconv.Itoa(line)+string(markEnd))
			}
			w.copyText(j, j+1)
			line++
			i = j + 1
			continue
		}
		if j+1 >= len(src) {
			w.copyText(j, j+1)
			return
		}
		var closer string
		switch src[j+1] {
		case '{':
			closer = "}}"
		case '%':
			closer = "%}"
		case '#':
			closer = "#}"
		default:
			w.copyText(j, j+1)
			i = j + 1
			continue
		}
		end := findClose(src, j+2, closer)
		if end < 0 { // unterminated: let pongo2 report it
			w.copyText(j, len(src))
			return
		}
		inner, innerEnd := j+2, end
		if inner < innerEnd && src[inner] == '-' {
			inner++
		}
		trimNext = false
		if innerEnd > inner && src[innerEnd-1] == '-' {
			innerEnd--
			trimNext = true
		}
		w.copyText(j, inner)
		switch closer {
		case "}}":
			w.expr(tokenize(src, inner, innerEnd), nil)
		case "%}":
			w.tag(tokenize(src, inner, innerEnd))
		default:
			w.copyText(inner, innerEnd)
		}
		w.copyText(innerEnd, end+2)
		line += strings.Count(src[j:end+2], "\n")
		i = end + 2
	}
}

// lastTagEnd returns the offset just after the last "}}", "%}" or "#}"
// before nl on the same line, or the line's start.
func lastTagEnd(src string, nl int) int {
	start := strings.LastIndexByte(src[:nl], '\n') + 1
	best := start
	for _, c := range []string{"}}", "%}", "#}"} {
		if k := strings.LastIndex(src[start:nl], c); k >= 0 && start+k+2 > best {
			best = start + k + 2
		}
	}
	return best
}

func trimsLeft(next string) bool {
	next = strings.TrimLeft(next, " \t")
	return strings.HasPrefix(next, "{%-") || strings.HasPrefix(next, "{{-") || strings.HasPrefix(next, "{#-")
}

// findClose finds closer at or after i, outside string literals.
func findClose(src string, i int, closer string) int {
	var quote byte
	for ; i < len(src)-1; i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if closer != "#}" {
				quote = c
			}
		case src[i:i+2] == closer:
			return i
		}
	}
	return -1
}

type tok struct {
	kind byte // 'i' identifier, 'n' number, 's' string, 'w' space, 'p' punctuation
	a, b int  // offsets in the source
	s    string
}

func tokenize(src string, a, b int) []tok {
	var ts []tok
	for i := a; i < b; {
		c := src[i]
		j := i + 1
		var kind byte
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			kind = 'w'
			for j < b && strings.IndexByte(" \t\n\r", src[j]) >= 0 {
				j++
			}
		case isIdentStart(c):
			kind = 'i'
			for j < b && (isIdentStart(src[j]) || isDigit(src[j])) {
				j++
			}
		case isDigit(c):
			kind = 'n'
			for j < b && isDigit(src[j]) {
				j++
			}
		case c == '"' || c == '\'':
			kind = 's'
			for j < b && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, b)
		default:
			kind = 'p'
			if j < b {
				switch src[i : j+1] {
				case "==", "!=", "<=", ">=", "&&", "||":
					j++
				}
			}
		}
		ts = append(ts, tok{kind: kind, a: i, b: j, s: src[i:j]})
		i = j
	}
	return ts
}

func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// next returns the index of the first non-space token at or after i, or len(ts).
func next(ts []tok, i int) int {
	for i < len(ts) && ts[i].kind == 'w' {
		i++
	}
	return i
}

// prev returns the index of the last non-space token before i, or -1.
func prev(ts []tok, i int) int {
	i--
	for i >= 0 && ts[i].kind == 'w' {
		i--
	}
	return i
}

func is(ts []tok, i int, s string) bool {
	return i >= 0 && i < len(ts) && ts[i].kind != 's' && ts[i].s == s
}

// matching returns the index of the token closing the bracket at i.
func matching(ts []tok, i int) int {
	depth := 0
	for k := i; k < len(ts); k++ {
		if ts[k].kind != 'p' {
			continue
		}
		switch ts[k].s {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

var (
	keywords = map[string]bool{
		"in": true, "and": true, "or": true, "not": true, "true": true, "false": true,
		"as": true, "export": true, "is": true, "None": true, "none": true, "nil": true,
	}
	// filterNames maps Jinja2 filter names to pongo2's.
	filterNames = map[string]string{"d": "default", "count": "length", "int": "integer"}
)

// tag rewrites the tokens of a {% tag %}.
func (w *rewriter) tag(ts []tok) {
	n := next(ts, 0)
	if n == len(ts) || ts[n].kind != 'i' {
		w.copyToks(ts)
		return
	}
	name := ts[n].s
	w.copyToks(ts[:n])
	rest := ts[n+1:]
	if blockTags[name] {
		w.blocks = append(w.blocks, block{name, w.pos(ts[n].a)})
	} else if strings.HasPrefix(name, "end") && blockTags[name[3:]] {
		if k := len(w.blocks) - 1; k >= 0 && w.blocks[k].name == name[3:] {
			w.blocks = w.blocks[:k]
		}
	}
	switch name {
	case "else":
		if len(w.blocks) > 0 && w.blocks[len(w.blocks)-1].name == "for" {
			w.replace(ts[n].a, ts[n].b, "empty")
		} else {
			w.copyToks(ts[n : n+1])
		}
		w.copyToks(rest)
	case "if", "elif", "ifequal", "ifnotequal", "firstof", "with", "widthratio":
		w.copyToks(ts[n : n+1])
		w.expr(rest, nil)
	case "for":
		w.copyToks(ts[n : n+1])
		in := -1
		for k := range rest {
			if rest[k].kind == 'i' && rest[k].s == "in" {
				in = k
				break
			}
		}
		if in < 0 {
			w.copyToks(rest)
			return
		}
		w.copyToks(rest[:in+1])
		e := rest[in+1:]
		end := len(e)
		for {
			p := prev(e, end)
			if p >= 0 && e[p].kind == 'i' && (e[p].s == "reversed" || e[p].s == "sorted") && prev(e, p) >= 0 {
				end = p
				continue
			}
			break
		}
		n0 := len(*w.refs)
		w.expr(e[:end], nil)
		w.copyToks(e[end:])
		// Go maps have no order, and pongo2 iterates them at random
		// unless told "sorted": iterate maps in key order, for
		// reproducible builds. A loop with two variables is over a
		// map; a loop with one over a reference gets the sorted keys
		// of a map from _kiln_v.
		sorted := false
		for _, t := range e[end:] {
			sorted = sorted || t.s == "sorted"
		}
		twoVars := false
		for _, t := range rest[:in] {
			twoVars = twoVars || is([]tok{t}, 0, ",")
		}
		if twoVars && !sorted && len(e) > 0 { // "for k, v in" alone: pongo2 reports it
			w.insert(e[len(e)-1].b, " sorted")
		}
		if !twoVars && len(*w.refs) == n0+1 && onlyRef(e[:end]) {
			(*w.refs)[n0].iter = true
		}
	case "set":
		w.copyToks(ts[n : n+1])
		eq := -1
		for k := range rest {
			if is(rest, k, "=") {
				eq = k
				break
			}
		}
		w.copyToks(rest[:eq+1])
		w.expr(rest[eq+1:], nil)
	case "include":
		w.copyToks(ts[n : n+1])
		with := len(rest)
		for k := range rest {
			if rest[k].kind == 'i' && rest[k].s == "with" {
				with = k
				break
			}
		}
		if k := next(rest, 0); k < with && rest[k].kind != 's' {
			w.expr(rest[:with], map[string]bool{"if_exists": true})
		} else {
			w.copyToks(rest[:with])
		}
		w.expr(rest[with:], map[string]bool{"with": true, "only": true})
	default:
		w.copyToks(ts[n:])
	}
}

func (w *rewriter) copyToks(ts []tok) {
	for _, t := range ts {
		w.copyText(t.a, t.b)
	}
}

// expr rewrites the tokens of an expression; extra names are left alone.
func (w *rewriter) expr(ts []tok, extra map[string]bool) {
	chain := -1 // the reference whose filter chain we are in
	for i := 0; i < len(ts); {
		t := ts[i]
		if t.kind == 'w' {
			w.copyText(t.a, t.b)
			i++
			continue
		}
		p := prev(ts, i)
		switch {
		case t.kind == 'p' && t.s == "|":
			w.copyText(t.a, t.b)
			i = w.filter(ts, i+1, &chain)
			continue
		case t.kind != 'i' || is(ts, p, "."):
			w.copyText(t.a, t.b)
			chain = -1
			i++
			continue
		case t.s == "True" || t.s == "False":
			w.replace(t.a, t.b, strings.ToLower(t.s))
			chain = -1
			i++
			continue
		case keywords[t.s] || extra[t.s] || is(ts, p, "as"):
			w.copyText(t.a, t.b)
			chain = -1
			i++
			continue
		}
		nx := next(ts, i+1)
		if is(ts, nx, "=") || is(ts, nx, "(") {
			// a keyword argument's name, or a function or macro call
			w.copyText(t.a, t.b)
			chain = -1
			i++
			continue
		}
		// a variable reference: a.b.0.c
		path := []string{t.s}
		end := i + 1
		for end+1 < len(ts) && is(ts, end, ".") && (ts[end+1].kind == 'i' || ts[end+1].kind == 'n') {
			if ts[end+1].kind == 'i' && (ts[end+1].s == "items" || ts[end+1].s == "keys") && is(ts, end+2, "(") && is(ts, end+3, ")") {
				break
			}
			path = append(path, ts[end+1].s)
			end += 2
		}
		drop := end
		if is(ts, end, ".") && (is(ts, end+1, "items") || is(ts, end+1, "keys")) && is(ts, end+2, "(") && is(ts, end+3, ")") {
			drop = end + 4 // .items() or .keys()
		} else if is(ts, end, "(") {
			// a method call (x.upper()): pongo2's own semantics
			w.copyToks(ts[i:end])
			chain = -1
			i = end
			continue
		}
		pos := w.pos(t.a)
		// x is [not] defined
		k := next(ts, drop)
		if is(ts, k, "is") {
			k2 := next(ts, k+1)
			neg := is(ts, k2, "not")
			if neg {
				k2 = next(ts, k2+1)
			}
			if is(ts, k2, "defined") {
				n := w.addRef(path, pos, refTest)
				call := "_kiln_d(" + strconv.Itoa(n) + ")"
				if neg {
					call = "not " + call
				}
				w.replace(t.a, ts[k2].b, call)
				chain = -1
				i = k2 + 1
				continue
			}
		}
		n := w.addRef(path, pos, refStrict)
		w.replace(t.a, ts[drop-1].b, "_kiln_v("+strconv.Itoa(n)+")")
		chain = n
		i = drop
	}
}

// filter rewrites a filter after "|" starting at ts[i]; it returns the
// index after it.
func (w *rewriter) filter(ts []tok, i int, chain *int) int {
	k := next(ts, i)
	w.copyToks(ts[i:k])
	if k >= len(ts) || ts[k].kind != 'i' {
		return k
	}
	name := ts[k].s
	if n, ok := filterNames[name]; ok {
		w.replace(ts[k].a, ts[k].b, n)
		name = n
	} else {
		w.copyText(ts[k].a, ts[k].b)
	}
	if (name == "default" || name == "default_if_none") && *chain >= 0 {
		(*w.refs)[*chain].mode = refDefault
	}
	k++
	switch nx := next(ts, k); {
	case is(ts, nx, "("):
		// Jinja2 call syntax: f() → f, f(a, …) → f:a
		c := matching(ts, nx)
		if c < 0 {
			w.copyToks(ts[k:])
			return len(ts)
		}
		args := ts[nx+1 : c]
		first := len(args)
		depth := 0
		for a := range args {
			if args[a].kind == 'p' {
				switch args[a].s {
				case "(", "[", "{":
					depth++
				case ")", "]", "}":
					depth--
				case ",":
					if depth == 0 && first == len(args) {
						first = a
					}
				}
			}
		}
		arg := args[:first]
		if next(arg, 0) == len(arg) {
			w.replace(ts[k].a, ts[c].b, "")
			return c + 1
		}
		w.replace(ts[k].a, ts[nx+1].a, ":")
		saved := *chain
		w.expr(arg, nil)
		*chain = saved
		if first < len(args) {
			// pongo2 filters take one argument; drop the rest (default's
			// boolean flag, for one)
			w.replace(args[first].a, ts[c].b, "")
		} else {
			w.replace(ts[c].a, ts[c].b, "")
		}
		return c + 1
	case is(ts, nx, ":"):
		// pongo2 syntax: f:arg
		w.copyToks(ts[k : nx+1])
		a := next(ts, nx+1)
		w.copyToks(ts[nx+1 : a])
		if a < len(ts) && ts[a].kind == 'i' {
			end := a + 1
			for end+1 < len(ts) && is(ts, end, ".") {
				end += 2
			}
			saved := *chain
			w.expr(ts[a:end], nil)
			*chain = saved
			return end
		}
		if a < len(ts) {
			w.copyText(ts[a].a, ts[a].b)
			return a + 1
		}
		return a
	}
	return k
}

func (w *rewriter) addRef(path []string, pos Pos, mode refMode) int {
	*w.refs = append(*w.refs, ref{path: path, pos: pos, mode: mode})
	return len(*w.refs) - 1
}

// pos returns the position of src offset off.
func (w *rewriter) pos(off int) Pos { return w.s.srcPos(off) }

func (s *source) srcPos(off int) Pos {
	line := 1 + strings.Count(s.src[:off], "\n")
	col := off - (strings.LastIndexByte(s.src[:off], '\n') + 1) + 1
	return Pos{File: s.file, Line: s.lineOff + line, Col: col}
}

// outPos maps a 1-based line and column of the rewritten text back to the
// position in the source.
func (s *source) outPos(line, col int) Pos {
	off := 0
	for l := 1; l < line; l++ {
		k := strings.IndexByte(s.out[off:], '\n')
		if k < 0 {
			break
		}
		off += k + 1
	}
	off = min(off+max(col-1, 0), len(s.out))
	i := sort.Search(len(s.edits), func(i int) bool { return s.edits[i].outOff > off }) - 1
	src := off
	if i >= 0 {
		e := s.edits[i]
		if off < e.outEnd {
			src = e.srcOff
		} else {
			src = e.srcEnd + off - e.outEnd
		}
	}
	return s.srcPos(min(src, len(s.src)))
}
