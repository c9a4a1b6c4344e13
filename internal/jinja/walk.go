package jinja

// walkNames calls fn with every name the statements read, outside the
// bodies of the macros they define.
func walkNames(body []stmt, fn func(string)) {
	visitStmts(body, false, func(e expr) {
		if n, ok := e.(*nameExpr); ok {
			fn(n.name)
		}
	})
}

// walkStmtExprs calls fn with every expression node of body, macros
// included.
func walkStmtExprs(body []stmt, fn func(expr)) { visitStmts(body, true, fn) }

func visitStmts(body []stmt, macros bool, fn func(expr)) {
	for _, s := range body {
		visitStmt(s, macros, fn)
	}
}

func visitStmt(s stmt, macros bool, fn func(expr)) {
	x := func(e expr) { walkExprNodes(e, fn) }
	sub := func(b []stmt) { visitStmts(b, macros, fn) }
	switch t := s.(type) {
	case *printStmt:
		x(t.x)
	case *forStmt:
		x(t.iter)
		x(t.cond)
		sub(t.body)
		sub(t.els)
	case *ifStmt:
		for _, c := range t.conds {
			x(c)
		}
		for _, b := range t.bodies {
			sub(b)
		}
	case *setStmt:
		x(t.x)
	case *setBlockStmt:
		for _, f := range t.filters {
			x(f)
		}
		sub(t.body)
	case *macroStmt:
		for _, d := range t.m.defaults {
			x(d)
		}
		if macros {
			sub(t.m.body)
		}
	case *callBlockStmt:
		x(t.call)
		for _, d := range t.caller.defaults {
			x(d)
		}
		sub(t.caller.body)
	case *filterBlockStmt:
		for _, f := range t.filters {
			x(f)
		}
		sub(t.body)
	case *includeStmt:
		x(t.template)
	case *importStmt:
		x(t.template)
	case *fromImportStmt:
		x(t.template)
	case *withStmt:
		for _, v := range t.values {
			x(v)
		}
		sub(t.body)
	}
}

func walkArgs(a callArgs, fn func(expr)) {
	for _, e := range a.args {
		walkExprNodes(e, fn)
	}
	for _, k := range a.kwargs {
		walkExprNodes(k.v, fn)
	}
	walkExprNodes(a.dynArgs, fn)
	walkExprNodes(a.dynKwargs, fn)
}

// walkExprNodes calls fn with e and every expression inside it.
func walkExprNodes(e expr, fn func(expr)) {
	if e == nil {
		return
	}
	if f, ok := e.(*filterExpr); ok && f == nil {
		return
	}
	fn(e)
	w := func(x expr) { walkExprNodes(x, fn) }
	switch t := e.(type) {
	case *getattrExpr:
		w(t.obj)
	case *getitemExpr:
		w(t.obj)
		w(t.arg)
	case *sliceExpr:
		w(t.start)
		w(t.stop)
		w(t.step)
	case *callExpr:
		w(t.fn)
		walkArgs(t.args, fn)
	case *filterExpr:
		w(t.in)
		walkArgs(t.args, fn)
	case *testExpr:
		w(t.in)
		walkArgs(t.args, fn)
	case *binExpr:
		w(t.l)
		w(t.r)
	case *unaryExpr:
		w(t.x)
	case *concatExpr:
		for _, p := range t.parts {
			w(p)
		}
	case *compareExpr:
		w(t.first)
		for _, o := range t.ops {
			w(o.x)
		}
	case *condExpr:
		w(t.test)
		w(t.yes)
		w(t.no)
	case *listExpr:
		for _, i := range t.items {
			w(i)
		}
	case *tupleExpr:
		for _, i := range t.items {
			w(i)
		}
	case *dictExpr:
		for i := range t.keys {
			w(t.keys[i])
			w(t.vals[i])
		}
	}
}
