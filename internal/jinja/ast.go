package jinja

// The syntax tree. Every node keeps the offset of its first byte in its
// template's source.

type expr interface{ offset() int }

type node struct{ off int }

func (n node) offset() int { return n.off }

type (
	constExpr struct {
		node
		v any
	}
	nameExpr struct {
		node
		name string
	}
	getattrExpr struct {
		node
		obj  expr
		attr string
	}
	getitemExpr struct {
		node
		obj expr
		arg expr
	}
	sliceExpr struct {
		node
		start, stop, step expr // nil when left out
	}
	callExpr struct {
		node
		fn   expr
		args callArgs
	}
	filterExpr struct {
		node
		in   expr // nil in a filter block or block set
		name string
		args callArgs
	}
	testExpr struct {
		node
		in   expr
		name string
		args callArgs
	}
	binExpr struct {
		node
		op   string // + - * / // % ** and or
		l, r expr
	}
	unaryExpr struct {
		node
		op string // not - +
		x  expr
	}
	concatExpr struct {
		node
		parts []expr
	}
	compareExpr struct {
		node
		first expr
		ops   []cmpOp
	}
	condExpr struct {
		node
		test, yes, no expr // no may be nil
	}
	listExpr struct {
		node
		items []expr
	}
	tupleExpr struct {
		node
		items []expr
	}
	dictExpr struct {
		node
		keys, vals []expr
	}
)

type cmpOp struct {
	op string // == != < <= > >= in notin
	x  expr
}

type kwArg struct {
	name string
	v    expr
}

type callArgs struct {
	args      []expr
	kwargs    []kwArg
	dynArgs   expr // *args
	dynKwargs expr // **kwargs
}

// statements

type stmt interface{ offset() int }

type (
	textStmt struct {
		node
		text string
	}
	printStmt struct {
		node
		x expr
	}
	forStmt struct {
		node
		target    expr // a name, or a tuple of targets
		iter      expr
		cond      expr // loop filter, may be nil
		recursive bool
		body      []stmt
		els       []stmt
	}
	ifStmt struct {
		node
		conds  []expr
		bodies [][]stmt // one per cond, then the else body (may be nil)
	}
	setStmt struct {
		node
		target expr // name, tuple, or getattrExpr on a name (namespace)
		x      expr
	}
	setBlockStmt struct {
		node
		target  expr
		filters []*filterExpr
		body    []stmt
	}
	macroStmt struct {
		node
		name string
		m    *macroDef
	}
	callBlockStmt struct {
		node
		call   *callExpr
		caller *macroDef
	}
	filterBlockStmt struct {
		node
		filters []*filterExpr
		body    []stmt
	}
	includeStmt struct {
		node
		template      expr
		ignoreMissing bool
		withContext   bool
	}
	importStmt struct {
		node
		template    expr
		target      string
		withContext bool
	}
	fromImportStmt struct {
		node
		template    expr
		names       [][2]string // name, alias
		withContext bool
	}
	withStmt struct {
		node
		targets []expr
		values  []expr
		body    []stmt
	}
)

// macroDef is a macro's (or a call block's caller's) definition.
type macroDef struct {
	name     string
	params   []string
	defaults []expr // for the last len(defaults) params
	body     []stmt
	varargs  bool // the body uses varargs
	kwargs   bool // the body uses kwargs
	caller   bool // the body uses caller
	src      *source
	off      int
}
