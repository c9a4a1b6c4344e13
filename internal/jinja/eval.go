package jinja

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

func (ev *evaluator) eval(x expr, sc *scope) (any, error) {
	switch t := x.(type) {
	case *constExpr:
		return t.v, nil
	case *nameExpr:
		if v, ok := sc.lookup(t.name); ok {
			return v, nil
		}
		if v, ok := ev.global(t.name); ok {
			return v, nil
		}
		return &Undefined{name: t.name, pos: ev.pos(t.off), top: true}, nil
	case *getattrExpr:
		obj, err := ev.eval(t.obj, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := obj.(*Undefined); ok {
			return nil, u.err()
		}
		v, ok := getattr(obj, t.attr)
		if !ok {
			return &Undefined{name: refName(t.obj, obj) + "." + t.attr, pos: ev.pos(t.off)}, nil
		}
		if u, ok := v.(*Undefined); ok && u.pos.Line == 0 {
			c := *u
			c.pos = ev.pos(t.off)
			return &c, nil
		}
		if f, ok := v.(*unsupportedMethod); ok {
			return nil, ev.errAt(unsupportedf("%s.%s()", f.typ, t.attr), t.off)
		}
		return v, nil
	case *getitemExpr:
		obj, err := ev.eval(t.obj, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := obj.(*Undefined); ok {
			return nil, u.err()
		}
		if sl, ok := t.arg.(*sliceExpr); ok {
			v, err := ev.slice(obj, sl, sc)
			return v, ev.errAt(err, t.off)
		}
		k, err := ev.eval(t.arg, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := k.(*Undefined); ok {
			return nil, u.err()
		}
		v, ok, err := getitem(obj, k)
		if err != nil {
			return nil, ev.errAt(err, t.off)
		}
		if !ok {
			return &Undefined{name: refName(t.obj, obj) + "." + str(k), pos: ev.pos(t.off)}, nil
		}
		return v, nil
	case *callExpr:
		return ev.call(t, sc, nil)
	case *filterExpr:
		in, err := ev.eval(t.in, sc)
		if err != nil {
			return nil, err
		}
		return ev.filter(t, in, sc)
	case *testExpr:
		return ev.test(t, sc)
	case *unaryExpr:
		v, err := ev.eval(t.x, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := v.(*Undefined); ok {
			return nil, u.err()
		}
		switch t.op {
		case "not":
			b, err := truth(v)
			return !b, err
		case "-":
			switch n := v.(type) {
			case int64:
				if n == math.MinInt64 {
					return nil, ev.errAt(unsupportedf("an integer beyond 64 bits"), t.off)
				}
				return -n, nil
			case bool:
				i, _ := toInt(n)
				return -i, nil
			case float64:
				return -n, nil
			}
			return nil, ev.errAt(typeErrorf("bad operand type for unary -: '%s'", typeName(v)), t.off)
		case "+":
			switch n := v.(type) {
			case int64, float64:
				return n, nil
			case bool:
				i, _ := toInt(n)
				return i, nil
			}
			return nil, ev.errAt(typeErrorf("bad operand type for unary +: '%s'", typeName(v)), t.off)
		}
	case *binExpr:
		l, err := ev.eval(t.l, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := l.(*Undefined); ok && t.op != "or" && t.op != "and" {
			return nil, u.err()
		}
		switch t.op {
		case "and", "or":
			b, err := truth(l)
			if err != nil {
				return nil, err
			}
			if b == (t.op == "or") {
				return l, nil
			}
			return ev.eval(t.r, sc)
		}
		r, err := ev.eval(t.r, sc)
		if err != nil {
			return nil, err
		}
		if u, ok := r.(*Undefined); ok {
			return nil, u.err()
		}
		v, err := binop(t.op, l, r)
		return v, ev.errAt(err, t.off)
	case *concatExpr:
		var b strings.Builder
		for _, p := range t.parts {
			v, err := ev.eval(p, sc)
			if err != nil {
				return nil, err
			}
			out, err := printable(v)
			if err != nil {
				return nil, ev.errAt(err, p.offset())
			}
			b.WriteString(out)
		}
		return b.String(), nil
	case *compareExpr:
		l, err := ev.eval(t.first, sc)
		if err != nil {
			return nil, err
		}
		for _, o := range t.ops {
			r, err := ev.eval(o.x, sc)
			if err != nil {
				return nil, err
			}
			for _, v := range []any{l, r} {
				if u, ok := v.(*Undefined); ok {
					return nil, u.err()
				}
			}
			ok, err := compareOp(o.op, l, r)
			if err != nil {
				return nil, ev.errAt(err, t.off)
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *condExpr:
		c, err := ev.eval(t.test, sc)
		if err != nil {
			return nil, err
		}
		b, err := truth(c)
		if err != nil {
			return nil, err
		}
		if b {
			return ev.eval(t.yes, sc)
		}
		if t.no == nil {
			// Jinja2 makes this one a plain Undefined, whatever the
			// environment's: it prints as ""
			return &Undefined{name: "", pos: ev.pos(t.off), hint: "the inline if expression evaluated to false and no else section was defined", lenient: true}, nil
		}
		return ev.eval(t.no, sc)
	case *listExpr:
		l := make([]any, 0, len(t.items))
		for _, i := range t.items {
			v, err := ev.eval(i, sc)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return &List{l}, nil
	case *tupleExpr:
		l := make(tuple, 0, len(t.items))
		for _, i := range t.items {
			v, err := ev.eval(i, sc)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case *dictExpr:
		d := NewDict()
		for i := range t.keys {
			k, err := ev.eval(t.keys[i], sc)
			if err != nil {
				return nil, err
			}
			if u, ok := k.(*Undefined); ok {
				return nil, u.err()
			}
			v, err := ev.eval(t.vals[i], sc)
			if err != nil {
				return nil, err
			}
			if err := d.put(k, v); err != nil {
				return nil, ev.errAt(err, t.keys[i].offset())
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("internal error: expression %T", x)
}

// refName is the dotted name of the reference x, for errors.
func refName(x expr, v any) string {
	switch t := x.(type) {
	case *nameExpr:
		return t.name
	case *getattrExpr:
		return refName(t.obj, nil) + "." + t.attr
	case *getitemExpr:
		if c, ok := t.arg.(*constExpr); ok {
			return refName(t.obj, nil) + "." + str(c.v)
		}
		return refName(t.obj, nil) + "[…]"
	}
	if v != nil {
		return typeName(v) + " object"
	}
	return "(expression)"
}

func compareOp(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return equal(l, r), nil
	case "!=":
		return !equal(l, r), nil
	case "in":
		return contains(r, l)
	case "notin":
		b, err := contains(r, l)
		return !b, err
	}
	c, err := compare(l, r, op)
	if err != nil {
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// maxString bounds the strings and lists repetition makes.
const maxString = 64 << 20

// binop is Python's arithmetic.
func binop(op string, l, r any) (any, error) {
	li, lint := toInt(l)
	ri, rint := toInt(r)
	if lint && rint {
		return intOp(op, li, ri)
	}
	lf, lnum := toFloat(l)
	rf, rnum := toFloat(r)
	if lnum && rnum {
		return floatOp(op, lf, rf)
	}
	switch op {
	case "+":
		_, lm := l.(Markup)
		_, rm := r.(Markup)
		if lm || rm {
			// Markup's __add__ and __radd__ escape the other side
			if isString(l) && isString(r) || lm && !rm || rm && !lm {
				return escape(l) + escape(r), nil
			}
		}
		if isString(l) && isString(r) {
			return str(l) + str(r), nil
		}
		if a, ok := l.(*List); ok {
			if b, ok := r.(*List); ok {
				return &List{append(append([]any(nil), a.items...), b.items...)}, nil
			}
		}
		if a, ok := l.(tuple); ok {
			if b, ok := r.(tuple); ok {
				return append(append(tuple(nil), a...), b...), nil
			}
		}
	case "*":
		if rint && !lint {
			return repeat(l, ri)
		}
		if lint && !rint {
			return repeat(r, li)
		}
	case "%":
		if isString(l) {
			return printf(str(l), r)
		}
	}
	return nil, typeErrorf("unsupported operand type(s) for %s: '%s' and '%s'", op, typeName(l), typeName(r))
}

func repeat(v any, n int64) (any, error) {
	if n < 0 {
		n = 0
	}
	switch x := v.(type) {
	case string, Markup:
		s := str(x)
		if int64(len(s))*n > maxString {
			return nil, unsupportedf("a string of more than %d bytes", maxString)
		}
		return strings.Repeat(s, int(n)), nil
	case *List, tuple:
		items, _ := seqItems(x)
		if int64(len(items))*n > maxString/8 {
			return nil, unsupportedf("a list of more than %d items", maxString/8)
		}
		out := make([]any, 0, len(items)*int(n))
		for range n {
			out = append(out, items...)
		}
		if _, ok := x.(tuple); ok {
			return tuple(out), nil
		}
		return &List{out}, nil
	}
	return nil, typeErrorf("can't multiply sequence by non-int of type '%s'", typeName(v))
}

func intOp(op string, a, b int64) (any, error) {
	A, B := big.NewInt(a), big.NewInt(b)
	var z big.Int
	switch op {
	case "+":
		z.Add(A, B)
	case "-":
		z.Sub(A, B)
	case "*":
		z.Mul(A, B)
	case "/":
		if b == 0 {
			return nil, typeErrorf("division by zero")
		}
		return float64(a) / float64(b), nil
	case "//", "%":
		if b == 0 {
			if op == "%" {
				return nil, typeErrorf("integer modulo by zero")
			}
			return nil, typeErrorf("integer division or modulo by zero")
		}
		var m big.Int
		z.DivMod(A, B, &m) // Euclidean: m >= 0
		if m.Sign() != 0 && b < 0 {
			// Python floors: the remainder takes the divisor's sign
			z.Sub(&z, big.NewInt(1))
			m.Add(&m, B)
		}
		if op == "%" {
			z.Set(&m)
		}
	case "**":
		if b < 0 {
			if a == 0 {
				return nil, typeErrorf("0.0 cannot be raised to a negative power")
			}
			return math.Pow(float64(a), float64(b)), nil
		}
		if b > 64 && (a > 1 || a < -1) {
			return nil, unsupportedf("an integer beyond 64 bits (%d ** %d)", a, b)
		}
		z.Exp(A, B, nil)
	}
	return checkInt(&z)
}

func floatOp(op string, a, b float64) (any, error) {
	switch op {
	case "+":
		return a + b, nil
	case "-":
		return a - b, nil
	case "*":
		return a * b, nil
	case "/":
		if b == 0 {
			return nil, typeErrorf("float division by zero")
		}
		return a / b, nil
	case "//":
		if b == 0 {
			return nil, typeErrorf("float floor division by zero")
		}
		return math.Floor(a / b), nil
	case "%":
		if b == 0 {
			return nil, typeErrorf("float modulo")
		}
		m := math.Mod(a, b)
		if m != 0 && (m < 0) != (b < 0) {
			m += b
		}
		return m, nil
	case "**":
		if a == 0 && b < 0 {
			return nil, typeErrorf("0.0 cannot be raised to a negative power")
		}
		return math.Pow(a, b), nil
	}
	return nil, typeErrorf("bad operator %s", op)
}

// getattr is Jinja2's environment.getattr: an attribute (a method)
// first, then an item.
func getattr(obj any, name string) (any, bool) {
	if m, ok := method(obj, name); ok {
		return m, true
	}
	switch o := obj.(type) {
	case *Dict:
		return o.Get(name)
	case *namespace:
		return o.attrs.Get(name)
	case *loopContext:
		return o.attr(name)
	case *macro:
		return o.attr(name)
	case *module:
		return o.exports.Get(name)
	case *cycler:
		if name == "current" {
			return o.items[o.pos], true
		}
	}
	return nil, false
}

// getitem is Jinja2's environment.getitem: an item first, then an
// attribute.
func getitem(obj, k any) (any, bool, error) {
	switch o := obj.(type) {
	case *Dict:
		if _, err := hashKey(k); err != nil {
			return nil, false, err
		}
		if v, ok := o.get(k); ok {
			return v, true, nil
		}
	case *List, tuple, string, Markup, rangeValue:
		if i, ok := toInt(k); ok {
			var items []any
			switch s := o.(type) {
			case string:
				items = strChars(s)
			case Markup:
				items = strChars(string(s))
			case rangeValue:
				n := s.len()
				if i < 0 {
					i += n
				}
				if i >= 0 && i < n {
					return s.start + i*s.step, true, nil
				}
				return nil, false, nil
			default:
				items, _ = seqItems(o)
			}
			if i < 0 {
				i += int64(len(items))
			}
			if i >= 0 && i < int64(len(items)) {
				return items[i], true, nil
			}
			return nil, false, nil
		}
	}
	if s, ok := k.(string); ok {
		v, ok := getattr(obj, s)
		return v, ok, nil
	}
	return nil, false, nil
}

func (ev *evaluator) slice(obj any, sl *sliceExpr, sc *scope) (any, error) {
	var idx [3]*int64
	for i, x := range []expr{sl.start, sl.stop, sl.step} {
		if x == nil {
			continue
		}
		v, err := ev.eval(x, sc)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		n, ok := toInt(v)
		if !ok {
			return nil, typeErrorf("slice indices must be integers or None")
		}
		idx[i] = &n
	}
	var items []any
	switch o := obj.(type) {
	case string:
		items = strChars(o)
	case Markup:
		items = strChars(string(o))
	case rangeValue:
		start, stop, step, err := sliceIndices(o.len(), idx)
		if err != nil {
			return nil, err
		}
		return rangeValue{o.start + start*o.step, o.start + stop*o.step, o.step * step}, nil
	default:
		var ok bool
		if items, ok = seqItems(obj); !ok {
			return nil, typeErrorf("'%s' object is not subscriptable", typeName(obj))
		}
	}
	out, err := pySlice(items, idx)
	if err != nil {
		return nil, err
	}
	switch obj.(type) {
	case string, Markup:
		var b strings.Builder
		for _, c := range out {
			b.WriteString(c.(string))
		}
		return b.String(), nil
	case tuple:
		return tuple(out), nil
	}
	return &List{out}, nil
}

// sliceIndices is Python's slice(start, stop, step).indices(n).
func sliceIndices(n int64, idx [3]*int64) (start, stop, step int64, err error) {
	step = 1
	if idx[2] != nil {
		step = *idx[2]
		if step == 0 {
			return 0, 0, 0, typeErrorf("slice step cannot be zero")
		}
	}
	norm := func(p *int64, dflt, lo, hi int64) int64 {
		if p == nil {
			return dflt
		}
		v := *p
		if v < 0 {
			v += n
			if v < lo {
				v = lo
			}
		} else if v > hi {
			v = hi
		}
		return v
	}
	if step > 0 {
		return norm(idx[0], 0, 0, n), norm(idx[1], n, 0, n), step, nil
	}
	return norm(idx[0], n-1, -1, n-1), norm(idx[1], -1, -1, n-1), step, nil
}

// pySlice is Python's seq[start:stop:step].
func pySlice(items []any, idx [3]*int64) ([]any, error) {
	start, stop, step, err := sliceIndices(int64(len(items)), idx)
	if err != nil {
		return nil, err
	}
	var out []any
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		out = append(out, items[i])
	}
	return out, nil
}

// args are a call's evaluated arguments.
type args struct {
	pos []any
	kw  *Dict
}

func (ev *evaluator) evalArgs(a callArgs, sc *scope) (args, error) {
	out := args{kw: NewDict()}
	for _, x := range a.args {
		v, err := ev.eval(x, sc)
		if err != nil {
			return out, err
		}
		out.pos = append(out.pos, v)
	}
	for _, k := range a.kwargs {
		v, err := ev.eval(k.v, sc)
		if err != nil {
			return out, err
		}
		out.kw.Set(k.name, v)
	}
	if a.dynArgs != nil {
		v, err := ev.eval(a.dynArgs, sc)
		if err != nil {
			return out, err
		}
		items, err := iterate(v)
		if err != nil {
			return out, ev.errAt(err, a.dynArgs.offset())
		}
		out.pos = append(out.pos, items...)
	}
	if a.dynKwargs != nil {
		v, err := ev.eval(a.dynKwargs, sc)
		if err != nil {
			return out, err
		}
		d, ok := v.(*Dict)
		if !ok {
			return out, ev.errAt(typeErrorf("argument after ** must be a mapping, not %s", typeName(v)), a.dynKwargs.offset())
		}
		for k, e := range d.All() {
			out.kw.Set(str(k), e)
		}
	}
	return out, nil
}

func (ev *evaluator) call(t *callExpr, sc *scope, caller *macro) (any, error) {
	fn, err := ev.eval(t.fn, sc)
	if err != nil {
		return nil, err
	}
	if u, ok := fn.(*Undefined); ok {
		return nil, u.err()
	}
	a, err := ev.evalArgs(t.args, sc)
	if err != nil {
		return nil, err
	}
	if caller != nil {
		a.kw.Set("caller", caller)
	}
	if err := ev.r.enter(); err != nil {
		return nil, ev.errAt(err, t.off)
	}
	defer ev.r.leave()
	v, err := ev.callValue(fn, a)
	return v, ev.errAt(err, t.off)
}

func (ev *evaluator) callValue(fn any, a args) (any, error) {
	switch f := fn.(type) {
	case *macro:
		return f.call(ev, a)
	case *callable:
		return f.fn(ev, a.pos, a.kw)
	case *loopContext:
		if f.recurse == nil {
			return nil, typeErrorf("the loop must have the 'recursive' marker to be called recursively")
		}
		if len(a.pos) != 1 || a.kw.Len() > 0 {
			return nil, typeErrorf("loop() takes one argument")
		}
		return f.recurse(ev, a.pos[0])
	case *joiner:
		if f.used {
			return f.sep, nil
		}
		f.used = true
		return "", nil
	}
	return nil, typeErrorf("'%s' object is not callable", typeName(fn))
}

// macro is a macro, or a call block's caller, bound to its scope.
type macro struct {
	name  string
	def   *macroDef
	scope *scope
}

func (m *macro) attr(name string) (any, bool) {
	switch name {
	case "name":
		return m.name, true
	case "arguments":
		t := make(tuple, len(m.def.params))
		for i, p := range m.def.params {
			t[i] = p
		}
		return t, true
	case "catch_kwargs":
		return m.def.kwargs, true
	case "catch_varargs":
		return m.def.varargs, true
	case "caller":
		return m.def.caller, true
	}
	return nil, false
}

func (m *macro) call(ev *evaluator, a args) (any, error) {
	d := m.def
	sc := m.scope.child()
	set := map[string]bool{}
	for i, v := range a.pos {
		if i < len(d.params) {
			sc.vars[d.params[i]] = v
			set[d.params[i]] = true
		}
	}
	if len(a.pos) > len(d.params) {
		if !d.varargs {
			return nil, typeErrorf("macro '%s' takes not more than %d argument(s)", m.name, len(d.params))
		}
		sc.vars["varargs"] = tuple(a.pos[len(d.params):])
	} else if d.varargs {
		sc.vars["varargs"] = tuple{}
	}
	kwargs := NewDict()
	for k, v := range a.kw.All() {
		name := k.(string)
		isParam := false
		for _, p := range d.params {
			if p == name {
				isParam = true
			}
		}
		switch {
		case isParam && set[name]:
			return nil, typeErrorf("macro '%s' got multiple values for argument '%s'", m.name, name)
		case isParam:
			sc.vars[name] = v
			set[name] = true
		case name == "caller" && d.caller:
			sc.vars["caller"] = v
		case d.kwargs:
			kwargs.Set(name, v)
		default:
			return nil, typeErrorf("macro '%s' takes no keyword argument '%s'", m.name, name)
		}
	}
	if d.kwargs {
		sc.vars["kwargs"] = kwargs
	}
	if d.caller {
		if _, ok := sc.vars["caller"]; !ok {
			sc.vars["caller"] = &Undefined{name: "caller", pos: d.src.pos(d.off), hint: fmt.Sprintf("macro '%s' was called without a caller", m.name)}
		}
	}
	body := &evaluator{r: ev.r, src: d.src, w: &writer{}}
	first := len(d.params) - len(d.defaults)
	for i, p := range d.params {
		if set[p] {
			continue
		}
		if i >= first {
			v, err := body.eval(d.defaults[i-first], sc)
			if err != nil {
				return nil, err
			}
			sc.vars[p] = v
			continue
		}
		sc.vars[p] = &Undefined{name: p, pos: d.src.pos(d.off), hint: fmt.Sprintf("parameter '%s' of macro '%s' was not provided", p, m.name)}
	}
	if err := body.body(d.body, sc); err != nil {
		return nil, err
	}
	return body.w.b.String(), nil
}

// loopContext is a for loop's loop variable.
type loopContext struct {
	items   []any
	index0  int
	depth   int
	recurse func(*evaluator, any) (any, error)
	last    []any // the last values changed() saw
	changed bool  // changed() was called
}

func (l *loopContext) attr(name string) (any, bool) {
	n := int64(len(l.items))
	i := int64(l.index0)
	switch name {
	case "index":
		return i + 1, true
	case "index0":
		return i, true
	case "revindex":
		return n - i, true
	case "revindex0":
		return n - i - 1, true
	case "first":
		return i == 0, true
	case "last":
		return i == n-1, true
	case "length":
		return n, true
	case "depth":
		return int64(l.depth + 1), true
	case "depth0":
		return int64(l.depth), true
	case "previtem":
		if i == 0 {
			return &Undefined{name: "loop.previtem", hint: "there is no previous item"}, true
		}
		return l.items[i-1], true
	case "nextitem":
		if i == n-1 {
			return &Undefined{name: "loop.nextitem", hint: "there is no next item"}, true
		}
		return l.items[i+1], true
	case "cycle":
		return &callable{name: "cycle", fn: func(_ *evaluator, a []any, _ *Dict) (any, error) {
			if len(a) == 0 {
				return nil, typeErrorf("no items for cycling given")
			}
			return a[l.index0%len(a)], nil
		}}, true
	case "changed":
		return &callable{name: "changed", fn: func(_ *evaluator, a []any, _ *Dict) (any, error) {
			if l.changed && seqEqual(l.last, a) {
				return false, nil
			}
			l.changed, l.last = true, a
			return true, nil
		}}, true
	}
	return nil, false
}
