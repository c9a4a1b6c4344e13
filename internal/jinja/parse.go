package jinja

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// This file is Jinja2's parser (jinja2/parser.py), operator for operator.

type parser struct {
	src  *source
	toks []token
	i    int
	// open block tags, innermost last, for the error of one not closed
	open []openTag
}

type openTag struct {
	name string
	off  int
}

func parse(src *source) ([]stmt, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	body, end, err := p.subparse(nil)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errorf(p.cur().off, "unexpected {%% %s %%}", end)
	}
	return body, nil
}

func (p *parser) cur() token  { return p.toks[p.i] }
func (p *parser) peek() token { return p.toks[min(p.i+1, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if p.i < len(p.toks)-1 {
		p.i++
	}
	return t
}

func (p *parser) errorf(off int, format string, args ...any) error {
	return &Error{Pos: p.src.pos(off), Msg: "template: " + fmt.Sprintf(format, args...)}
}

func describe(t token) string {
	switch t.kind {
	case tVarEnd:
		return `"}}"`
	case tBlockEnd:
		return `"%}"`
	case tEOF:
		return "end of template"
	case tString:
		return "string " + strRepr(t.val)
	case tData:
		return "text"
	}
	return strconv.Quote(t.val)
}

func (p *parser) unexpected() error {
	return p.errorf(p.cur().off, "unexpected %s", describe(p.cur()))
}

func (p *parser) isOp(v string) bool   { t := p.cur(); return t.kind == tOp && t.val == v }
func (p *parser) isName(v string) bool { t := p.cur(); return t.kind == tName && t.val == v }

func (p *parser) skipOp(v string) bool {
	if p.isOp(v) {
		p.next()
		return true
	}
	return false
}

func (p *parser) skipName(v string) bool {
	if p.isName(v) {
		p.next()
		return true
	}
	return false
}

func (p *parser) expectOp(v string) error {
	if !p.skipOp(v) {
		return p.errorf(p.cur().off, "expected %q, got %s", v, describe(p.cur()))
	}
	return nil
}

func (p *parser) expectName() (token, error) {
	if p.cur().kind != tName {
		return token{}, p.errorf(p.cur().off, "expected a name, got %s", describe(p.cur()))
	}
	return p.next(), nil
}

func (p *parser) expectBlockEnd() error {
	if p.cur().kind != tBlockEnd {
		return p.errorf(p.cur().off, "expected the end of the statement (%%}), got %s", describe(p.cur()))
	}
	p.next()
	return nil
}

// subparse parses statements until a block tag named in ends; it returns
// that tag's name (its {% and name consumed), or "" at the end.
func (p *parser) subparse(ends []string) ([]stmt, string, error) {
	var body []stmt
	for {
		t := p.cur()
		switch t.kind {
		case tEOF:
			if len(ends) > 0 {
				o := p.open[len(p.open)-1]
				return nil, "", p.errorf(o.off, "{%% %s %%} is not closed: add {%% end%s %%}", o.name, o.name)
			}
			return body, "", nil
		case tData:
			p.next()
			body = append(body, &textStmt{node{t.off}, t.val})
		case tVarBegin:
			p.next()
			x, err := p.parseTuple(false, true, nil, false)
			if err != nil {
				return nil, "", err
			}
			if p.cur().kind != tVarEnd {
				return nil, "", p.unexpected()
			}
			p.next()
			body = append(body, &printStmt{node{x.offset()}, x})
		case tBlockBegin:
			p.next()
			name := p.cur()
			if name.kind != tName {
				return nil, "", p.errorf(name.off, "expected a statement name, got %s", describe(name))
			}
			for _, e := range ends {
				if name.val == e {
					p.next()
					return body, e, nil
				}
			}
			s, err := p.statement()
			if err != nil {
				return nil, "", err
			}
			if s != nil {
				body = append(body, s)
			}
		default:
			return nil, "", p.unexpected()
		}
	}
}

// block parses a body up to one of ends, for the tag name opened at off.
func (p *parser) block(name string, off int, ends ...string) ([]stmt, string, error) {
	p.open = append(p.open, openTag{name, off})
	body, end, err := p.subparse(ends)
	p.open = p.open[:len(p.open)-1]
	return body, end, err
}

func (p *parser) statement() (stmt, error) {
	t := p.next()
	switch t.val {
	case "for":
		return p.parseFor(t)
	case "if":
		return p.parseIf(t)
	case "set":
		return p.parseSet(t)
	case "macro":
		return p.parseMacro(t)
	case "call":
		return p.parseCallBlock(t)
	case "filter":
		return p.parseFilterBlock(t)
	case "include":
		return p.parseInclude(t)
	case "import":
		return p.parseImport(t)
	case "from":
		return p.parseFromImport(t)
	case "with":
		return p.parseWith(t)
	case "extends", "block", "autoescape":
		return nil, &Error{Pos: p.src.pos(t.off), Msg: fmt.Sprintf("Jinja2 {%% %s %%} is not supported by kiln", t.val)}
	}
	if strings.HasPrefix(t.val, "end") || t.val == "else" || t.val == "elif" {
		if len(p.open) > 0 {
			o := p.open[len(p.open)-1]
			return nil, p.errorf(o.off, "{%% %s %%} is not closed: add {%% end%s %%}", o.name, o.name)
		}
		return nil, p.errorf(t.off, "unexpected {%% %s %%}", t.val)
	}
	return nil, p.errorf(t.off, "unknown tag %q", t.val)
}

func (p *parser) parseFor(t token) (stmt, error) {
	target, err := p.parseAssignTarget(false, []string{"in"})
	if err != nil {
		return nil, err
	}
	if !p.skipName("in") {
		return nil, p.errorf(p.cur().off, "expected \"in\", got %s", describe(p.cur()))
	}
	iter, err := p.parseTuple(false, false, []string{"recursive"}, false)
	if err != nil {
		return nil, err
	}
	s := &forStmt{node: node{t.off}, target: target, iter: iter}
	if p.skipName("if") {
		if s.cond, err = p.parseExpression(true); err != nil {
			return nil, err
		}
	}
	s.recursive = p.skipName("recursive")
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.block("for", t.off, "endfor", "else")
	if err != nil {
		return nil, err
	}
	s.body = body
	if end == "else" {
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if s.els, _, err = p.block("for", t.off, "endfor"); err != nil {
			return nil, err
		}
	}
	return s, p.expectBlockEnd()
}

func (p *parser) parseIf(t token) (stmt, error) {
	s := &ifStmt{node: node{t.off}}
	for {
		cond, err := p.parseTuple(false, true, nil, false)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.block("if", t.off, "elif", "else", "endif")
		if err != nil {
			return nil, err
		}
		s.conds = append(s.conds, cond)
		s.bodies = append(s.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			els, _, err := p.block("if", t.off, "endif")
			if err != nil {
				return nil, err
			}
			s.bodies = append(s.bodies, els)
		}
		return s, p.expectBlockEnd()
	}
}

func (p *parser) parseSet(t token) (stmt, error) {
	target, err := p.parseAssignTarget(true, nil)
	if err != nil {
		return nil, err
	}
	if p.skipOp("=") {
		x, err := p.parseTuple(false, true, nil, false)
		if err != nil {
			return nil, err
		}
		return &setStmt{node{t.off}, target, x}, p.expectBlockEnd()
	}
	filters, err := p.parseFilterChain()
	if err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, _, err := p.block("set", t.off, "endset")
	if err != nil {
		return nil, err
	}
	return &setBlockStmt{node{t.off}, target, filters, body}, p.expectBlockEnd()
}

// parseFilterChain parses "| f(args) | g" (a block set's, starting with
// |) or "f(args) | g" (a filter block's, first=true).
func (p *parser) parseFilterChain() ([]*filterExpr, error) {
	var fs []*filterExpr
	for p.isOp("|") {
		p.next()
		f, err := p.parseFilter(nil)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func (p *parser) parseSignature(d *macroDef) error {
	if err := p.expectOp("("); err != nil {
		return err
	}
	for !p.isOp(")") {
		if len(d.params) > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
		}
		n, err := p.expectName()
		if err != nil {
			return err
		}
		d.params = append(d.params, n.val)
		if p.skipOp("=") {
			x, err := p.parseExpression(true)
			if err != nil {
				return err
			}
			d.defaults = append(d.defaults, x)
		} else if len(d.defaults) > 0 {
			return p.errorf(n.off, "non-default argument follows default argument")
		}
	}
	p.next()
	return nil
}

func (p *parser) parseMacro(t token) (stmt, error) {
	n, err := p.expectName()
	if err != nil {
		return nil, err
	}
	d := &macroDef{name: n.val, src: p.src, off: t.off}
	if err := p.parseSignature(d); err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	if d.body, _, err = p.block("macro", t.off, "endmacro"); err != nil {
		return nil, err
	}
	d.scan()
	return &macroStmt{node{t.off}, n.val, d}, p.expectBlockEnd()
}

func (p *parser) parseCallBlock(t token) (stmt, error) {
	d := &macroDef{name: "caller", src: p.src, off: t.off}
	if p.isOp("(") {
		if err := p.parseSignature(d); err != nil {
			return nil, err
		}
	}
	x, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	call, ok := x.(*callExpr)
	if !ok {
		return nil, p.errorf(x.offset(), "expected a call")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	if d.body, _, err = p.block("call", t.off, "endcall"); err != nil {
		return nil, err
	}
	d.scan()
	return &callBlockStmt{node{t.off}, call, d}, p.expectBlockEnd()
}

func (p *parser) parseFilterBlock(t token) (stmt, error) {
	first, err := p.parseFilter(nil)
	if err != nil {
		return nil, err
	}
	rest, err := p.parseFilterChain()
	if err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, _, err := p.block("filter", t.off, "endfilter")
	if err != nil {
		return nil, err
	}
	return &filterBlockStmt{node{t.off}, append([]*filterExpr{first}, rest...), body}, p.expectBlockEnd()
}

// parseContext parses an optional "with context" or "without context".
func (p *parser) parseContext(dflt bool) bool {
	if (p.isName("with") || p.isName("without")) && p.peek().kind == tName && p.peek().val == "context" {
		with := p.next().val == "with"
		p.next()
		return with
	}
	return dflt
}

func (p *parser) parseInclude(t token) (stmt, error) {
	x, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	s := &includeStmt{node: node{t.off}, template: x}
	if p.isName("ignore") && p.peek().kind == tName && p.peek().val == "missing" {
		p.next()
		p.next()
		s.ignoreMissing = true
	}
	s.withContext = p.parseContext(true)
	return s, p.expectBlockEnd()
}

func (p *parser) parseImport(t token) (stmt, error) {
	x, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	if !p.skipName("as") {
		return nil, p.errorf(p.cur().off, "expected \"as\", got %s", describe(p.cur()))
	}
	n, err := p.expectName()
	if err != nil {
		return nil, err
	}
	s := &importStmt{node: node{t.off}, template: x, target: n.val}
	s.withContext = p.parseContext(false)
	return s, p.expectBlockEnd()
}

func (p *parser) parseFromImport(t token) (stmt, error) {
	x, err := p.parseExpression(true)
	if err != nil {
		return nil, err
	}
	if !p.skipName("import") {
		return nil, p.errorf(p.cur().off, "expected \"import\", got %s", describe(p.cur()))
	}
	s := &fromImportStmt{node: node{t.off}, template: x}
	for {
		if len(s.names) > 0 {
			if !p.skipOp(",") {
				break
			}
		}
		if (p.isName("with") || p.isName("without")) && p.peek().kind == tName && p.peek().val == "context" {
			break
		}
		n, err := p.expectName()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(n.val, "_") {
			return nil, p.errorf(n.off, "names starting with an underline can not be imported")
		}
		alias := n.val
		if p.skipName("as") {
			a, err := p.expectName()
			if err != nil {
				return nil, err
			}
			alias = a.val
		}
		s.names = append(s.names, [2]string{n.val, alias})
	}
	s.withContext = p.parseContext(false)
	return s, p.expectBlockEnd()
}

func (p *parser) parseWith(t token) (stmt, error) {
	s := &withStmt{node: node{t.off}}
	for p.cur().kind != tBlockEnd {
		if len(s.targets) > 0 {
			if err := p.expectOp(","); err != nil {
				return nil, err
			}
		}
		target, err := p.parseAssignTarget(false, nil)
		if err != nil {
			return nil, err
		}
		if err := p.expectOp("="); err != nil {
			return nil, err
		}
		v, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		s.targets = append(s.targets, target)
		s.values = append(s.values, v)
	}
	p.next()
	body, _, err := p.block("with", t.off, "endwith")
	if err != nil {
		return nil, err
	}
	s.body = body
	return s, p.expectBlockEnd()
}

// parseAssignTarget parses a name, a tuple of names or, with nsRef, a
// namespace attribute (ns.attr).
func (p *parser) parseAssignTarget(nsRef bool, extraEnd []string) (expr, error) {
	if nsRef && p.cur().kind == tName && p.peek().kind == tOp && p.peek().val == "." {
		n := p.next()
		p.next()
		a, err := p.expectName()
		if err != nil {
			return nil, err
		}
		return &getattrExpr{node{n.off}, &nameExpr{node{n.off}, n.val}, a.val}, nil
	}
	x, err := p.parseTuple(true, true, extraEnd, false)
	if err != nil {
		return nil, err
	}
	if err := checkTarget(p, x); err != nil {
		return nil, err
	}
	return x, nil
}

func checkTarget(p *parser, x expr) error {
	switch t := x.(type) {
	case *nameExpr:
		switch t.name {
		case "true", "false", "none", "True", "False", "None":
			return p.errorf(t.off, "cannot assign to %s", t.name)
		}
		return nil
	case *tupleExpr:
		for _, e := range t.items {
			if err := checkTarget(p, e); err != nil {
				return err
			}
		}
		return nil
	}
	return p.errorf(x.offset(), "cannot assign to this expression")
}

// expressions

func (p *parser) parseExpression(withCondExpr bool) (expr, error) {
	if withCondExpr {
		return p.parseCondExpr()
	}
	return p.parseOr()
}

func (p *parser) parseCondExpr() (expr, error) {
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.next()
		test, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		var no expr
		if p.skipName("else") {
			if no, err = p.parseCondExpr(); err != nil {
				return nil, err
			}
		}
		x = &condExpr{node{x.offset()}, test, x, no}
	}
	return x, nil
}

func (p *parser) parseOr() (expr, error) { return p.leftAssoc(p.parseAnd, "or") }

func (p *parser) parseAnd() (expr, error) { return p.leftAssoc(p.parseNot, "and") }

// leftAssoc parses operands of next joined by the operators ops (names
// like and, or; or symbols), left to right.
func (p *parser) leftAssoc(next func() (expr, error), ops ...string) (expr, error) {
	l, err := next()
	if err != nil {
		return nil, err
	}
	for {
		op := ""
		for _, o := range ops {
			if p.isOp(o) || p.isName(o) {
				op = o
			}
		}
		if op == "" {
			return l, nil
		}
		p.next()
		r, err := next()
		if err != nil {
			return nil, err
		}
		l = &binExpr{node{l.offset()}, op, l, r}
	}
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		t := p.next()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{node{t.off}, "not", x}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	x, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	var ops []cmpOp
	for {
		t := p.cur()
		var op string
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == "<=" || t.val == ">" || t.val == ">="):
			op = t.val
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.peek().kind == tName && p.peek().val == "in":
			op = "notin"
			p.next()
			p.next()
		default:
			if len(ops) == 0 {
				return x, nil
			}
			return &compareExpr{node{x.offset()}, x, ops}, nil
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		ops = append(ops, cmpOp{op, r})
	}
}

func (p *parser) parseMath1() (expr, error) { return p.leftAssoc(p.parseConcat, "+", "-") }

func (p *parser) parseConcat() (expr, error) {
	x, err := p.parseMath2()
	if err != nil {
		return nil, err
	}
	parts := []expr{x}
	for p.isOp("~") {
		p.next()
		r, err := p.parseMath2()
		if err != nil {
			return nil, err
		}
		parts = append(parts, r)
	}
	if len(parts) == 1 {
		return x, nil
	}
	return &concatExpr{node{x.offset()}, parts}, nil
}

func (p *parser) parseMath2() (expr, error) {
	return p.leftAssoc(p.parsePow, "*", "/", "//", "%")
}

func (p *parser) parsePow() (expr, error) {
	return p.leftAssoc(func() (expr, error) { return p.parseUnary(true) }, "**")
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	var x expr
	var err error
	switch {
	case p.isOp("-") || p.isOp("+"):
		t := p.next()
		inner, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		x = &unaryExpr{node{t.off}, t.val, inner}
	default:
		if x, err = p.parsePrimary(); err != nil {
			return nil, err
		}
	}
	if x, err = p.parsePostfix(x); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(x)
	}
	return x, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.cur()
	switch t.kind {
	case tName:
		p.next()
		switch t.val {
		case "true", "True":
			return &constExpr{node{t.off}, true}, nil
		case "false", "False":
			return &constExpr{node{t.off}, false}, nil
		case "none", "None":
			return &constExpr{node{t.off}, nil}, nil
		}
		return &nameExpr{node{t.off}, t.val}, nil
	case tString:
		p.next()
		s := t.val
		for p.cur().kind == tString {
			s += p.next().val
		}
		return &constExpr{node{t.off}, s}, nil
	case tInt:
		p.next()
		v, err := parseInt(t.val)
		if err != nil {
			return nil, &Error{Pos: p.src.pos(t.off), Msg: err.Error()}
		}
		return &constExpr{node{t.off}, v}, nil
	case tFloat:
		p.next()
		f, err := strconv.ParseFloat(strings.ReplaceAll(t.val, "_", ""), 64)
		if err != nil {
			return nil, p.errorf(t.off, "bad number %s", t.val)
		}
		return &constExpr{node{t.off}, f}, nil
	case tOp:
		switch t.val {
		case "(":
			p.next()
			x, err := p.parseTuple(false, true, nil, true)
			if err != nil {
				return nil, err
			}
			return x, p.expectOp(")")
		case "[":
			p.next()
			l := &listExpr{node: node{t.off}}
			return l, p.commaList("]", func() error {
				x, err := p.parseExpression(true)
				l.items = append(l.items, x)
				return err
			})
		case "{":
			p.next()
			d := &dictExpr{node: node{t.off}}
			return d, p.commaList("}", func() error {
				k, err := p.parseExpression(true)
				if err != nil {
					return err
				}
				if err := p.expectOp(":"); err != nil {
					return err
				}
				v, err := p.parseExpression(true)
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
				return err
			})
		}
	}
	return nil, p.unexpected()
}

func parseInt(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	base := 10
	if len(s) > 1 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base, s = 16, s[2:]
		case 'o', 'O':
			base, s = 8, s[2:]
		case 'b', 'B':
			base, s = 2, s[2:]
		}
	}
	b, ok := new(big.Int).SetString(s, base)
	if !ok {
		return 0, fmt.Errorf("template: bad integer %s", s)
	}
	v, err := checkInt(b)
	if err != nil {
		return 0, err
	}
	return v, nil
}

// parseTuple parses expressions separated by commas: a tuple if there
// is a comma (or explicit parentheses around none), else the one
// expression. simplified parses names only (assignment targets).
func (p *parser) parseTuple(simplified, withCondExpr bool, extraEnd []string, explicitParens bool) (expr, error) {
	start := p.cur().off
	var items []expr
	comma := false
	for {
		if len(items) > 0 {
			if !p.skipOp(",") {
				break
			}
			comma = true
		}
		if p.tupleEnd(extraEnd) {
			break
		}
		var x expr
		var err error
		if simplified {
			x, err = p.parsePrimary()
		} else {
			x, err = p.parseExpression(withCondExpr)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, x)
	}
	if !comma {
		if len(items) == 1 {
			return items[0], nil
		}
		if !explicitParens {
			return nil, p.errorf(p.cur().off, "expected an expression, got %s", describe(p.cur()))
		}
	}
	return &tupleExpr{node{start}, items}, nil
}

func (p *parser) tupleEnd(extraEnd []string) bool {
	t := p.cur()
	switch t.kind {
	case tVarEnd, tBlockEnd, tEOF:
		return true
	case tOp:
		return t.val == ")"
	case tName:
		for _, e := range extraEnd {
			if t.val == e {
				return true
			}
		}
	}
	return false
}

func (p *parser) parsePostfix(x expr) (expr, error) {
	for {
		var err error
		switch {
		case p.isOp(".") || p.isOp("["):
			x, err = p.parseSubscript(x)
		case p.isOp("("):
			x, err = p.parseCall(x)
		default:
			return x, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseFilterExpr(x expr) (expr, error) {
	for {
		var err error
		switch {
		case p.isOp("|"):
			p.next()
			x, err = p.parseFilter(x)
		case p.isName("is"):
			x, err = p.parseTest(x)
		case p.isOp("("):
			x, err = p.parseCall(x)
		default:
			return x, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (p *parser) parseSubscript(x expr) (expr, error) {
	t := p.next()
	if t.val == "." {
		a := p.next()
		switch a.kind {
		case tName:
			return &getattrExpr{node{x.offset()}, x, a.val}, nil
		case tInt:
			v, err := parseInt(a.val)
			if err != nil {
				return nil, &Error{Pos: p.src.pos(a.off), Msg: err.Error()}
			}
			return &getitemExpr{node{x.offset()}, x, &constExpr{node{a.off}, v}}, nil
		}
		return nil, p.errorf(a.off, "expected a name or number after \".\", got %s", describe(a))
	}
	var args []expr
	err := p.commaList("]", func() error {
		a, err := p.parseSubscribed()
		args = append(args, a)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, p.errorf(t.off, "expected a subscript")
	}
	if len(args) == 1 {
		return &getitemExpr{node{x.offset()}, x, args[0]}, nil
	}
	return &getitemExpr{node{x.offset()}, x, &tupleExpr{node{args[0].offset()}, args}}, nil
}

func (p *parser) parseSubscribed() (expr, error) {
	start := p.cur().off
	var parts [3]expr
	if !p.isOp(":") {
		x, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		if !p.isOp(":") {
			return x, nil
		}
		parts[0] = x
	}
	p.next() // :
	if !p.isOp("]") && !p.isOp(",") && !p.isOp(":") {
		x, err := p.parseExpression(true)
		if err != nil {
			return nil, err
		}
		parts[1] = x
	}
	if p.skipOp(":") {
		if !p.isOp("]") && !p.isOp(",") {
			x, err := p.parseExpression(true)
			if err != nil {
				return nil, err
			}
			parts[2] = x
		}
	}
	return &sliceExpr{node{start}, parts[0], parts[1], parts[2]}, nil
}

func (p *parser) parseCallArgs() (callArgs, error) {
	var a callArgs
	if err := p.expectOp("("); err != nil {
		return a, err
	}
	err := p.commaList(")", func() error {
		switch {
		case p.isOp("*"):
			p.next()
			x, err := p.parseExpression(true)
			a.dynArgs = x
			return err
		case p.isOp("**"):
			p.next()
			x, err := p.parseExpression(true)
			a.dynKwargs = x
			return err
		case p.cur().kind == tName && p.peek().kind == tOp && p.peek().val == "=":
			n := p.next()
			p.next()
			x, err := p.parseExpression(true)
			a.kwargs = append(a.kwargs, kwArg{n.val, x})
			return err
		}
		if len(a.kwargs) > 0 || a.dynArgs != nil || a.dynKwargs != nil {
			return p.errorf(p.cur().off, "positional argument follows keyword argument")
		}
		x, err := p.parseExpression(true)
		a.args = append(a.args, x)
		return err
	})
	return a, err
}

// commaList parses items separated by commas (one after the last is
// allowed) up to close, which it consumes.
func (p *parser) commaList(close string, item func() error) error {
	for n := 0; !p.isOp(close); n++ {
		if n > 0 {
			if err := p.expectOp(","); err != nil {
				return err
			}
			if p.isOp(close) {
				break
			}
		}
		if err := item(); err != nil {
			return err
		}
	}
	return p.expectOp(close)
}

func (p *parser) parseCall(x expr) (expr, error) {
	args, err := p.parseCallArgs()
	if err != nil {
		return nil, err
	}
	return &callExpr{node{x.offset()}, x, args}, nil
}

// dottedName parses a filter's or test's name: names joined by dots.
func (p *parser) dottedName() (token, error) {
	n, err := p.expectName()
	if err != nil {
		return n, err
	}
	for p.isOp(".") {
		p.next()
		m, err := p.expectName()
		if err != nil {
			return n, err
		}
		n.val += "." + m.val
	}
	return n, nil
}

// parseFilter parses a filter's name and arguments (after the |).
func (p *parser) parseFilter(in expr) (*filterExpr, error) {
	n, err := p.dottedName()
	if err != nil {
		return nil, err
	}
	f := &filterExpr{node: node{n.off}, in: in, name: n.val}
	if p.isOp("(") {
		if f.args, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *parser) parseTest(x expr) (expr, error) {
	p.next() // is
	negated := p.skipName("not")
	n, err := p.dottedName()
	if err != nil {
		return nil, err
	}
	t := &testExpr{node: node{n.off}, in: x, name: n.val}
	c := p.cur()
	switch {
	case p.isOp("("):
		if t.args, err = p.parseCallArgs(); err != nil {
			return nil, err
		}
	case (c.kind == tName || c.kind == tString || c.kind == tInt || c.kind == tFloat || p.isOp("(") || p.isOp("[") || p.isOp("{")) &&
		!p.isName("else") && !p.isName("or") && !p.isName("and"):
		if p.isName("is") {
			return nil, p.errorf(c.off, "you cannot chain multiple tests with is")
		}
		a, err := p.parsePrimary()
		if err != nil {
			return nil, err
		}
		if a, err = p.parsePostfix(a); err != nil {
			return nil, err
		}
		t.args.args = []expr{a}
	}
	if negated {
		return &unaryExpr{node{x.offset()}, "not", t}, nil
	}
	return t, nil
}

// scan records which of varargs, kwargs and caller the macro's body
// uses.
func (d *macroDef) scan() {
	walkNames(d.body, func(name string) {
		switch name {
		case "varargs":
			d.varargs = true
		case "kwargs":
			d.kwargs = true
		case "caller":
			d.caller = true
		}
	})
}
