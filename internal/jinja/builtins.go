package jinja

import "fmt"

// global returns the global function called name.
func (ev *evaluator) global(name string) (any, bool) {
	switch name {
	case "range":
		return &callable{name: name, fn: globalRange}, true
	case "dict":
		return &callable{name: name, fn: func(_ *evaluator, a []any, kw *Dict) (any, error) {
			d := NewDict()
			if len(a) > 1 {
				return nil, typeErrorf("dict expected at most 1 argument, got %d", len(a))
			}
			if len(a) == 1 {
				src, ok := a[0].(*Dict)
				if !ok {
					return nil, unsupportedf("dict() of a %s", typeName(a[0]))
				}
				d = src.Copy()
			}
			for k, v := range kw.All() {
				_ = d.put(k, v)
			}
			return d, nil
		}}, true
	case "namespace":
		return &callable{name: name, fn: func(_ *evaluator, a []any, kw *Dict) (any, error) {
			ns := &namespace{attrs: NewDict()}
			for _, x := range a {
				d, ok := x.(*Dict)
				if !ok {
					return nil, unsupportedf("namespace() of a %s", typeName(x))
				}
				for k, v := range d.All() {
					_ = ns.attrs.put(k, v)
				}
			}
			for k, v := range kw.All() {
				_ = ns.attrs.put(k, v)
			}
			return ns, nil
		}}, true
	case "cycler":
		return &callable{name: name, fn: func(_ *evaluator, a []any, kw *Dict) (any, error) {
			if len(a) == 0 {
				return nil, typeErrorf("at least one item has to be provided")
			}
			return &cycler{items: a}, nil
		}}, true
	case "joiner":
		return &callable{name: name, fn: func(_ *evaluator, a []any, kw *Dict) (any, error) {
			v, err := bind("joiner", a, kw, []string{"sep"}, []any{", "})
			if err != nil {
				return nil, err
			}
			return &joiner{sep: str(v[0])}, nil
		}}, true
	case "lipsum":
		return &callable{name: name, fn: func(*evaluator, []any, *Dict) (any, error) {
			return nil, unsupportedf("lipsum()")
		}}, true
	}
	return nil, false
}

func globalRange(_ *evaluator, a []any, kw *Dict) (any, error) {
	if kw.Len() > 0 {
		return nil, typeErrorf("range() takes no keyword arguments")
	}
	var n [3]int64
	for i, x := range a {
		if i >= 3 {
			return nil, typeErrorf("range expected at most 3 arguments, got %d", len(a))
		}
		v, ok := toInt(x)
		if !ok {
			if u, ok := x.(*Undefined); ok {
				return nil, u.err()
			}
			return nil, typeErrorf("'%s' object cannot be interpreted as an integer", typeName(x))
		}
		n[i] = v
	}
	switch len(a) {
	case 0:
		return nil, typeErrorf("range expected at least 1 argument, got 0")
	case 1:
		return rangeValue{0, n[0], 1}, nil
	case 2:
		return rangeValue{n[0], n[1], 1}, nil
	}
	if n[2] == 0 {
		return nil, typeErrorf("range() arg 3 must not be zero")
	}
	return rangeValue{n[0], n[1], n[2]}, nil
}

// bind binds a call's arguments to the parameters names, with defaults
// for the last len(dflt) of them.
func bind(fn string, a []any, kw *Dict, names []string, dflt []any) ([]any, error) {
	if len(a) > len(names) {
		return nil, typeErrorf("%s() takes at most %d arguments (%d given)", fn, len(names), len(a))
	}
	out := make([]any, len(names))
	set := make([]bool, len(names))
	for i, v := range a {
		out[i], set[i] = v, true
	}
	if kw != nil {
		for k, v := range kw.All() {
			found := false
			for i, n := range names {
				if n == k {
					if set[i] {
						return nil, typeErrorf("%s() got multiple values for argument '%s'", fn, n)
					}
					out[i], set[i], found = v, true, true
				}
			}
			if !found {
				return nil, typeErrorf("%s() got an unexpected keyword argument '%s'", fn, k)
			}
		}
	}
	first := len(names) - len(dflt)
	for i := range names {
		if set[i] {
			continue
		}
		if i < first {
			return nil, typeErrorf("%s() missing required argument '%s'", fn, names[i])
		}
		out[i] = dflt[i-first]
	}
	return out, nil
}

// cycler's methods.
func (c *cycler) method(name string) (any, bool) {
	switch name {
	case "next":
		return &callable{name: name, fn: func(*evaluator, []any, *Dict) (any, error) {
			v := c.items[c.pos]
			c.pos = (c.pos + 1) % len(c.items)
			return v, nil
		}}, true
	case "reset":
		return &callable{name: name, fn: func(*evaluator, []any, *Dict) (any, error) {
			c.pos = 0
			return nil, nil
		}}, true
	}
	return nil, false
}

// tests

type testFunc func(v any, a []any, kw *Dict) (bool, error)

func (ev *evaluator) test(t *testExpr, sc *scope) (any, error) {
	v, err := ev.eval(t.in, sc)
	if err != nil {
		return nil, err
	}
	a, err := ev.evalArgs(t.args, sc)
	if err != nil {
		return nil, err
	}
	if u, ok := v.(*Undefined); ok {
		switch t.name {
		case "defined":
			return false, nil
		case "undefined":
			return true, nil
		case "none", "boolean", "false", "true", "integer", "float", "number", "string", "mapping", "sameas":
			return false, nil
		}
		return nil, u.err()
	}
	for _, x := range a.pos {
		if u, ok := x.(*Undefined); ok {
			return nil, u.err()
		}
	}
	switch t.name {
	case "filter", "test":
		s, ok := v.(string)
		_, f := ev.r.env.filters[s]
		if t.name == "test" {
			_, f = ev.r.env.tests[s]
		}
		return ok && f, nil
	}
	b, err := ev.r.env.tests[t.name](v, a.pos, a.kw)
	return b, ev.errAt(err, t.off)
}

func oneArg(name string, a []any) (any, error) {
	if len(a) != 1 {
		return nil, typeErrorf("the %s test takes one argument (%d given)", name, len(a))
	}
	return a[0], nil
}

func cmpTest(op string) testFunc {
	return func(v any, a []any, _ *Dict) (bool, error) {
		o, err := oneArg(op, a)
		if err != nil {
			return false, err
		}
		return compareOp(op, v, o)
	}
}

func isInt(v any) bool { _, ok := v.(int64); return ok }

// newTests returns Jinja2's tests ("filter" and "test" are the
// evaluator's: they look at its tables).
func newTests() map[string]testFunc {
	tests := map[string]testFunc{
		"boolean": func(v any, _ []any, _ *Dict) (bool, error) { _, ok := v.(bool); return ok, nil },
		"callable": func(v any, _ []any, _ *Dict) (bool, error) {
			switch v.(type) {
			case *macro, *callable, *joiner, *loopContext:
				return true, nil
			}
			return false, nil
		},
		"defined":   func(any, []any, *Dict) (bool, error) { return true, nil },
		"undefined": func(any, []any, *Dict) (bool, error) { return false, nil },
		"divisibleby": func(v any, a []any, _ *Dict) (bool, error) {
			o, err := oneArg("divisibleby", a)
			if err != nil {
				return false, err
			}
			m, err := binop("%", v, o)
			if err != nil {
				return false, err
			}
			return equal(m, int64(0)), nil
		},
		"escaped": func(v any, _ []any, _ *Dict) (bool, error) { _, ok := v.(Markup); return ok, nil },
		"even": func(v any, _ []any, _ *Dict) (bool, error) {
			m, err := binop("%", v, int64(2))
			return err == nil && equal(m, int64(0)), err
		},
		"odd": func(v any, _ []any, _ *Dict) (bool, error) {
			m, err := binop("%", v, int64(2))
			return err == nil && equal(m, int64(1)), err
		},
		"false":   func(v any, _ []any, _ *Dict) (bool, error) { return v == false, nil },
		"true":    func(v any, _ []any, _ *Dict) (bool, error) { return v == true, nil },
		"none":    func(v any, _ []any, _ *Dict) (bool, error) { return v == nil, nil },
		"float":   func(v any, _ []any, _ *Dict) (bool, error) { _, ok := v.(float64); return ok, nil },
		"integer": func(v any, _ []any, _ *Dict) (bool, error) { return isInt(v), nil },
		"number":  func(v any, _ []any, _ *Dict) (bool, error) { return isNumber(v), nil },
		"string":  func(v any, _ []any, _ *Dict) (bool, error) { return isString(v), nil },
		"mapping": func(v any, _ []any, _ *Dict) (bool, error) { _, ok := v.(*Dict); return ok, nil },
		"sequence": func(v any, _ []any, _ *Dict) (bool, error) {
			switch v.(type) {
			case string, Markup, *List, tuple, *Dict, rangeValue:
				return true, nil
			}
			return false, nil
		},
		"iterable": func(v any, _ []any, _ *Dict) (bool, error) {
			switch v.(type) {
			case string, Markup, *List, tuple, *Dict, rangeValue, *generator, *dictView:
				return true, nil
			}
			return false, nil
		},
		"lower": func(v any, _ []any, _ *Dict) (bool, error) { return pyIsLower(str(v)), nil },
		"upper": func(v any, _ []any, _ *Dict) (bool, error) { return pyIsUpper(str(v)), nil },
		"sameas": func(v any, a []any, _ *Dict) (bool, error) {
			o, err := oneArg("sameas", a)
			if err != nil {
				return false, err
			}
			switch v.(type) {
			case nil, bool:
				return v == o, nil
			case *List, *Dict, *namespace, *macro:
				return v == o, nil
			}
			return false, unsupportedf("the sameas test on a %s", typeName(v))
		},
		"filter": nil,
		"test":   nil,
		"in": func(v any, a []any, _ *Dict) (bool, error) {
			o, err := oneArg("in", a)
			if err != nil {
				return false, err
			}
			return contains(o, v)
		},
	}
	for _, n := range [][]string{{"==", "eq", "equalto"}, {"!=", "ne"}, {"<", "lt", "lessthan"}, {"<=", "le"}, {">", "gt", "greaterthan"}, {">=", "ge"}} {
		for _, name := range n {
			tests[name] = cmpTest(n[0])
		}
	}
	return tests
}

// checkNames fails on a filter or test the template uses that does not
// exist, as Jinja2 does when it compiles the template.
func (env *Env) checkNames(src *source, body []stmt) error {
	var err error
	visit := func(e expr) {
		walkExprNodes(e, func(x expr) {
			if err != nil {
				return
			}
			switch t := x.(type) {
			case *filterExpr:
				if _, ok := env.filters[t.name]; !ok {
					if u, ok := unsupportedFilters[t.name]; ok {
						err = &Error{Pos: src.pos(t.off), Msg: fmt.Sprintf("Jinja2 filter %s is not supported by kiln%s", t.name, u)}
					} else {
						err = &Error{Pos: src.pos(t.off), Msg: fmt.Sprintf("template: no filter named %q", t.name)}
					}
				}
			case *testExpr:
				if _, ok := env.tests[t.name]; !ok {
					err = &Error{Pos: src.pos(t.off), Msg: fmt.Sprintf("template: no test named %q", t.name)}
				}
			}
		})
	}
	walkStmtExprs(body, visit)
	return err
}
