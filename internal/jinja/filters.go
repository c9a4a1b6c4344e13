package jinja

import (
	"errors"
	"fmt"
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

type filterFunc func(ev *evaluator, in any, a []any, kw *Dict) (any, error)

// unsupportedFilters are Jinja2's filters kiln refuses, with why.
var unsupportedFilters = map[string]string{
	"random": "",
	"urlize": "",
}

func (ev *evaluator) filter(f *filterExpr, in any, sc *scope) (any, error) {
	a, err := ev.evalArgs(f.args, sc)
	if err != nil {
		return nil, err
	}
	if u, ok := in.(*Undefined); ok && f.name != "default" && f.name != "d" {
		return nil, u.err()
	}
	fn := ev.r.env.filters[f.name]
	v, err := fn(ev, in, a.pos, a.kw)
	return v, ev.errAt(err, f.off)
}

// generator is a Python generator (what map, select and friends
// return): iterating it once uses it up, and it cannot be printed.
type generator struct {
	name  string
	items []any
	used  bool
}

func gen(name string, items []any) *generator { return &generator{name: name, items: items} }

// dictView is what a dict's items(), keys() and values() return.
type dictView struct {
	kind string // items, keys, values
	d    *Dict
}

func (v *dictView) items() []any {
	var out []any
	for k, e := range v.d.All() {
		switch v.kind {
		case "items":
			out = append(out, tuple{k, e})
		case "keys":
			out = append(out, k)
		default:
			out = append(out, e)
		}
	}
	return out
}

// list is Python's list(v).
func list(v any) ([]any, error) {
	switch x := v.(type) {
	case *generator:
		if x.used {
			return nil, nil
		}
		x.used = true
		return x.items, nil
	case *dictView:
		return x.items(), nil
	}
	return iterate(v)
}

func newFilters() map[string]filterFunc {
	fs := map[string]filterFunc{
		"abs":            filterAbs,
		"attr":           filterAttr,
		"batch":          filterBatch,
		"capitalize":     strFilter(pyCapitalize),
		"center":         filterCenter,
		"count":          filterLength,
		"d":              filterDefault,
		"default":        filterDefault,
		"dictsort":       filterDictsort,
		"e":              filterEscape,
		"escape":         filterEscape,
		"filesizeformat": filterFilesize,
		"first":          filterFirst,
		"float":          filterFloat,
		"forceescape":    filterForceEscape,
		"format":         filterFormat,
		"groupby":        filterGroupby,
		"indent":         filterIndent,
		"int":            filterInt,
		"items":          filterItems,
		"join":           filterJoin,
		"last":           filterLast,
		"length":         filterLength,
		"list":           filterList,
		"lower":          strFilter(pyLower),
		"map":            filterMap,
		"max":            minMax("max", 1),
		"min":            minMax("min", -1),
		"pprint":         filterPprint,
		"reject":         selectFilter("reject", false, false),
		"rejectattr":     selectFilter("rejectattr", false, true),
		"replace":        filterReplace,
		"reverse":        filterReverse,
		"round":          filterRound,
		"safe":           filterSafe,
		"select":         selectFilter("select", true, false),
		"selectattr":     selectFilter("selectattr", true, true),
		"slice":          filterSlice,
		"sort":           filterSort,
		"string":         filterString,
		"striptags":      filterStriptags,
		"sum":            filterSum,
		"title":          strFilter(title),
		"tojson":         filterTojson,
		"trim":           filterTrim,
		"truncate":       filterTruncate,
		"unique":         filterUnique,
		"upper":          strFilter(pyUpper),
		"urlencode":      filterUrlencode,
		"wordcount":      filterWordcount,
		"wordwrap":       filterWordwrap,
		"xmlattr":        filterXmlattr,
	}
	return fs
}

// soft is Jinja2's soft_str: strings as they are, anything else str().
func soft(v any) string { return str(v) }

func strFilter(f func(string) string) filterFunc {
	return func(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
		if len(a) > 0 || kw.Len() > 0 {
			return nil, typeErrorf("this filter takes no arguments")
		}
		out := f(soft(in))
		if _, ok := in.(Markup); ok {
			return Markup(out), nil
		}
		return out, nil
	}
}

// wordBeginning is Jinja2's _word_beginning_split_re, whose \s is
// Python's: white space in Unicode, and \x1c-\x1f.
var wordBeginning = regexp.MustCompile(`([-\t-\r\x1c- \x85\p{Z}({\[<]+)`)

// title is Jinja2's do_title: each word's first code point in upper case
// (not title case), the rest in lower case.
func title(s string) string {
	var b strings.Builder
	last := 0
	parts := []string{}
	for _, m := range wordBeginning.FindAllStringIndex(s, -1) {
		parts = append(parts, s[last:m[0]], s[m[0]:m[1]])
		last = m[1]
	}
	parts = append(parts, s[last:])
	for _, p := range parts {
		if p == "" {
			continue
		}
		_, n := utf8.DecodeRuneInString(p)
		b.WriteString(pyUpper(p[:n]) + pyLower(p[n:]))
	}
	return b.String()
}

func filterAbs(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	switch x := in.(type) {
	case int64:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case bool:
		i, _ := toInt(x)
		return i, nil
	case float64:
		return math.Abs(x), nil
	}
	return nil, typeErrorf("bad operand type for abs(): '%s'", typeName(in))
}

func filterAttr(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("attr", a, kw, []string{"name"}, nil)
	if err != nil {
		return nil, err
	}
	name := str(v[0])
	if m, ok := method(in, name); ok {
		return m, nil
	}
	switch o := in.(type) {
	case *namespace:
		if x, ok := o.attrs.Get(name); ok {
			return x, nil
		}
	case *loopContext, *macro, *cycler:
		if x, ok := getattr(o, name); ok {
			return x, nil
		}
	}
	return &Undefined{name: typeName(in) + " object." + name}, nil
}

func filterBatch(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("batch", a, kw, []string{"linecount", "fill_with"}, []any{nil})
	if err != nil {
		return nil, err
	}
	n, ok := toInt(v[0])
	if !ok || n <= 0 {
		return nil, typeErrorf("batch: the line count must be a positive integer")
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	var out []any
	for i := 0; i < len(items); i += int(n) {
		row := append([]any(nil), items[i:min(i+int(n), len(items))]...)
		if len(row) < int(n) && v[1] != nil {
			for len(row) < int(n) {
				row = append(row, v[1])
			}
		}
		out = append(out, &List{row})
	}
	return gen("batch", out), nil
}

func filterSlice(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("slice", a, kw, []string{"slices", "fill_with"}, []any{nil})
	if err != nil {
		return nil, err
	}
	slices, ok := toInt(v[0])
	if !ok || slices <= 0 {
		return nil, typeErrorf("slice: the number of slices must be a positive integer")
	}
	seq, err := list(in)
	if err != nil {
		return nil, err
	}
	n := int64(len(seq))
	per, extra := n/slices, n%slices
	offset := int64(0)
	var out []any
	for i := int64(0); i < slices; i++ {
		start := offset + i*per
		if i < extra {
			offset++
		}
		end := offset + (i+1)*per
		tmp := append([]any(nil), seq[start:end]...)
		if v[1] != nil && i >= extra {
			tmp = append(tmp, v[1])
		}
		out = append(out, &List{tmp})
	}
	return gen("slice", out), nil
}

func filterCenter(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("center", a, kw, []string{"width"}, []any{int64(80)})
	if err != nil {
		return nil, err
	}
	w, ok := toInt(v[0])
	if !ok {
		return nil, typeErrorf("center: the width must be an integer")
	}
	return center(soft(in), w, " "), nil
}

// center is Python's str.center.
func center(s string, width int64, fill string) string {
	n := int64(utf8.RuneCountInString(s))
	if width <= n {
		return s
	}
	marg := width - n
	left := marg/2 + (marg & width & 1)
	return strings.Repeat(fill, int(left)) + s + strings.Repeat(fill, int(marg-left))
}

func filterDefault(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("default", a, kw, []string{"default_value", "boolean"}, []any{"", false})
	if err != nil {
		return nil, err
	}
	if _, ok := in.(*Undefined); ok {
		return v[0], nil
	}
	if b, _ := truth(v[1]); b {
		if t, err := truth(in); err == nil && !t {
			return v[0], nil
		}
	}
	return in, nil
}

func filterDictsort(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("dictsort", a, kw, []string{"case_sensitive", "by", "reverse"}, []any{false, "key", false})
	if err != nil {
		return nil, err
	}
	d, ok := in.(*Dict)
	if !ok {
		return nil, typeErrorf("dictsort: want a dict, got %s", typeName(in))
	}
	pos := 0
	switch v[1] {
	case "key":
	case "value":
		pos = 1
	default:
		return nil, typeErrorf("You can only sort by either 'key' or 'value'")
	}
	cs, _ := truth(v[0])
	rev, _ := truth(v[2])
	items := (&dictView{"items", d}).items()
	err = sortValues(items, func(x any) any { return ignoreCase(x.(tuple)[pos], cs) }, rev)
	return &List{items}, err
}

func ignoreCase(v any, caseSensitive bool) any {
	if s, ok := v.(string); ok && !caseSensitive {
		return pyLower(s)
	}
	return v
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", ">", "&gt;", "<", "&lt;", "'", "&#39;", `"`, "&#34;")

func escape(v any) Markup {
	if m, ok := v.(Markup); ok {
		return m
	}
	return Markup(htmlEscaper.Replace(str(v)))
}

func filterEscape(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	return escape(in), nil
}

func filterForceEscape(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	return Markup(htmlEscaper.Replace(str(in))), nil
}

func filterSafe(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	if m, ok := in.(Markup); ok {
		return m, nil
	}
	return Markup(str(in)), nil
}

func filterFilesize(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("filesizeformat", a, kw, []string{"binary"}, []any{false})
	if err != nil {
		return nil, err
	}
	bytes, ok := toFloat(in)
	if !ok {
		f, err := strconv.ParseFloat(str(in), 64)
		if err != nil {
			return nil, typeErrorf("could not convert string to float: %s", strRepr(str(in)))
		}
		bytes = f
	}
	binary, _ := truth(v[0])
	base := 1000.0
	prefixes := []string{"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	if binary {
		base = 1024
		prefixes = []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	}
	if bytes == 1 {
		return "1 Byte", nil
	}
	if bytes < base {
		return fmt.Sprintf("%d Bytes", int64(bytes)), nil
	}
	unit := 0.0
	prefix := ""
	for i, p := range prefixes {
		unit = math.Pow(base, float64(i+2))
		prefix = p
		if bytes < unit {
			break
		}
	}
	return pyFormatFloat(base*bytes/unit, 1, 'f') + " " + prefix, nil
}

func filterFirst(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &Undefined{name: "first", hint: "No first item, sequence was empty."}, nil
	}
	return items[0], nil
}

func filterLast(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &Undefined{name: "last", hint: "No last item, sequence was empty."}, nil
	}
	return items[len(items)-1], nil
}

func filterFloat(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("float", a, kw, []string{"default"}, []any{0.0})
	if err != nil {
		return nil, err
	}
	if f, ok := toFloat(in); ok {
		return f, nil
	}
	if isString(in) {
		if f, ok := pyFloat(str(in)); ok {
			return f, nil
		}
	}
	return v[0], nil
}

// pyFloat is Python's float(str).
func pyFloat(s string) (float64, bool) {
	s, ok := pyUnderscores(pyNumText(s), func(c byte) bool { return '0' <= c && c <= '9' })
	if !ok {
		return 0, false
	}
	unsigned := s
	if s != "" && (s[0] == '+' || s[0] == '-') {
		unsigned = s[1:]
	}
	switch strings.ToLower(unsigned) {
	case "nan": // Go's ParseFloat takes no sign on nan
		return math.NaN(), true
	case "inf", "infinity":
	default:
		if strings.ContainsAny(strings.ToLower(s), "xpi") {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

func filterFormat(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	if len(a) > 0 && kw.Len() > 0 {
		return nil, typeErrorf("can't handle positional and keyword arguments at the same time")
	}
	var args any = tuple(a)
	if kw.Len() > 0 {
		args = kw
	}
	return printf(soft(in), args)
}

// attrGetter is Jinja2's make_attrgetter: attribute is a dotted path,
// each part an attribute or (a number) an index.
func attrGetter(attribute any, dflt any, hasDefault bool) func(any) (any, error) {
	if attribute == nil {
		return func(v any) (any, error) { return v, nil }
	}
	var parts []any
	if i, ok := toInt(attribute); ok {
		parts = []any{i}
	} else {
		for _, p := range strings.Split(str(attribute), ".") {
			if n, err := strconv.ParseInt(p, 10, 64); err == nil {
				parts = append(parts, n)
			} else {
				parts = append(parts, p)
			}
		}
	}
	return func(v any) (any, error) {
		for _, p := range parts {
			x, ok, err := getitem(v, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				if hasDefault {
					return dflt, nil
				}
				return nil, (&Undefined{name: fmt.Sprintf("%s object.%v", typeName(v), p)}).err()
			}
			v = x
		}
		return v, nil
	}
}

// multiAttrGetter is make_multi_attrgetter: attribute may list several,
// separated by commas.
func multiAttrGetter(attribute any, caseSensitive bool) func(any) (any, error) {
	if s, ok := attribute.(string); ok && strings.Contains(s, ",") {
		var gs []func(any) (any, error)
		for _, p := range strings.Split(s, ",") {
			gs = append(gs, attrGetter(p, nil, false))
		}
		return func(v any) (any, error) {
			var out tuple
			for _, g := range gs {
				x, err := g(v)
				if err != nil {
					return nil, err
				}
				out = append(out, ignoreCase(x, caseSensitive))
			}
			return &List{out}, nil
		}
	}
	g := attrGetter(attribute, nil, false)
	return func(v any) (any, error) {
		x, err := g(v)
		return ignoreCase(x, caseSensitive), err
	}
}

// sortBy sorts items by key, as Python's sorted(key=...) does.
func sortBy(items []any, key func(any) (any, error), reverse bool) error {
	keys := make(map[int]any, len(items))
	idx := make([]any, len(items))
	for i, it := range items {
		k, err := key(it)
		if err != nil {
			return err
		}
		keys[i] = k
		idx[i] = int64(i)
	}
	err := sortValues(idx, func(x any) any { return keys[int(x.(int64))] }, reverse)
	if err != nil {
		return err
	}
	sorted := make([]any, len(items))
	for i, x := range idx {
		sorted[i] = items[x.(int64)]
	}
	copy(items, sorted)
	return nil
}

func filterGroupby(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("groupby", a, kw, []string{"attribute", "default", "case_sensitive"}, []any{nil, false})
	if err != nil {
		return nil, err
	}
	cs, _ := truth(v[2])
	_, hasDefault := kw.Get("default")
	hasDefault = hasDefault || len(a) > 1
	get := attrGetter(v[0], v[1], hasDefault)
	key := func(x any) (any, error) {
		k, err := get(x)
		return ignoreCase(k, cs), err
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	items = append([]any(nil), items...)
	if err := sortBy(items, key, false); err != nil {
		return nil, err
	}
	var out []any
	for i := 0; i < len(items); {
		k, _ := key(items[i])
		j := i + 1
		for j < len(items) {
			kj, _ := key(items[j])
			if !equal(k, kj) {
				break
			}
			j++
		}
		grouper := k
		if !cs {
			grouper, _ = get(items[i])
		}
		out = append(out, &groupTuple{grouper: grouper, list: &List{append([]any(nil), items[i:j]...)}})
		i = j
	}
	return &List{out}, nil
}

// groupTuple is groupby's (grouper, list) named tuple.
type groupTuple struct {
	grouper any
	list    *List
}

func filterIndent(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("indent", a, kw, []string{"width", "first", "blank"}, []any{int64(4), false, false})
	if err != nil {
		return nil, err
	}
	var ind string
	if s, ok := v[0].(string); ok {
		ind = s
	} else if n, ok := toInt(v[0]); ok {
		ind = strings.Repeat(" ", int(max(n, 0)))
	} else {
		return nil, typeErrorf("indent: the width must be a string or an integer")
	}
	first, _ := truth(v[1])
	blank, _ := truth(v[2])
	lines := splitlines(soft(in) + "\n")
	var rv string
	if blank {
		rv = strings.Join(lines, "\n"+ind)
	} else if len(lines) > 0 {
		rv = lines[0]
		if len(lines) > 1 {
			rest := make([]string, len(lines)-1)
			for i, l := range lines[1:] {
				if l != "" {
					l = ind + l
				}
				rest[i] = l
			}
			rv += "\n" + strings.Join(rest, "\n")
		}
	}
	if first {
		rv = ind + rv
	}
	return rv, nil
}

func filterInt(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("int", a, kw, []string{"default", "base"}, []any{int64(0), int64(10)})
	if err != nil {
		return nil, err
	}
	switch x := in.(type) {
	case int64:
		return x, nil
	case bool:
		i, _ := toInt(x)
		return i, nil
	case float64:
		if math.IsNaN(x) {
			return v[0], nil
		}
		return floatToInt(x, x) // Python's int(inf) raises too
	case string, Markup:
		base, _ := toInt(v[1])
		s := str(x)
		if i, ok, err := pyInt(s, base); ok || err != nil {
			return i, err
		}
		if f, ok := pyFloat(s); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return floatToInt(f, x)
		}
	}
	return v[0], nil
}

// floatToInt is int(f) of the int filter's input in: Python's integers
// have no bound, kiln's are 64-bit, so beyond them it is an error.
func floatToInt(f float64, in any) (any, error) {
	if f >= 0x1p63 || f < -0x1p63 {
		return nil, int64Range(in)
	}
	return int64(f), nil
}

// int64Range is the error of the int filter giving an integer beyond 64
// bits from its input in.
func int64Range(in any) error {
	return unsupportedf("int of %s, an integer beyond 64-bit", repr(in))
}

// pyInt is Python's int(s, base); an integer beyond 64 bits is an error.
func pyInt(in string, base int64) (int64, bool, error) {
	s := pyNumText(in)
	neg := false
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		neg = s[0] == '-'
		s = s[1:]
	}
	ls := strings.ToLower(s)
	if base == 0 {
		base = 10
		switch {
		case strings.HasPrefix(ls, "0x"):
			base, s = 16, afterPrefix(s)
		case strings.HasPrefix(ls, "0o"):
			base, s = 8, afterPrefix(s)
		case strings.HasPrefix(ls, "0b"):
			base, s = 2, afterPrefix(s)
		default:
			if len(s) > 1 && strings.Trim(s, "0_") != "" && s[0] == '0' {
				return 0, false, nil
			}
		}
	} else if (base == 16 && strings.HasPrefix(ls, "0x")) || (base == 8 && strings.HasPrefix(ls, "0o")) || (base == 2 && strings.HasPrefix(ls, "0b")) {
		s = afterPrefix(s)
	}
	if s == "" || strings.ContainsAny(s[:1], "+-") {
		return 0, false, nil
	}
	s, ok := pyUnderscores(s, func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z' })
	if !ok {
		return 0, false, nil
	}
	if neg {
		s = "-" + s
	}
	i, err := strconv.ParseInt(s, int(base), 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, false, int64Range(in)
	}
	return i, err == nil, nil
}

// afterPrefix is s after its base prefix (0x, 0o, 0b) and the one
// underscore Python allows there.
func afterPrefix(s string) string {
	s = s[2:]
	if strings.HasPrefix(s, "_") && len(s) > 1 && s[1] != '_' {
		return s[1:]
	}
	return s
}

// pyUnderscores is s without its underscores, which Python's int() and
// float() allow only between two digits (digit tells them).
func pyUnderscores(s string, digit func(byte) bool) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '_' && (i == 0 || i == len(s)-1 || !digit(s[i-1]) || !digit(s[i+1])) {
			return "", false
		}
	}
	return strings.ReplaceAll(s, "_", ""), true
}

func filterItems(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	switch x := in.(type) {
	case *Undefined:
		return gen("items", nil), nil
	case *Dict:
		return gen("items", (&dictView{"items", x}).items()), nil
	}
	return nil, typeErrorf("Can only get item pairs from a mapping.")
}

func filterJoin(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("join", a, kw, []string{"d", "attribute"}, []any{"", nil})
	if err != nil {
		return nil, err
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	get := attrGetter(v[1], nil, false)
	parts := make([]string, len(items))
	for i, it := range items {
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		if parts[i], err = printable(x); err != nil {
			return nil, err
		}
	}
	return strings.Join(parts, str(v[0])), nil
}

func filterLength(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	if v, ok := in.(*dictView); ok {
		return int64(v.d.Len()), nil
	}
	return length(in)
}

func filterList(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	return &List{append([]any(nil), items...)}, nil
}

func filterMap(ev *evaluator, in any, a []any, kw *Dict) (any, error) {
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	var fn func(any) (any, error)
	if attr, ok := kw.Get("attribute"); ok && len(a) == 0 {
		dflt, hasDefault := kw.Get("default")
		for k := range kw.All() {
			if k != "attribute" && k != "default" {
				return nil, typeErrorf("Unexpected keyword argument %s", strRepr(str(k)))
			}
		}
		fn = attrGetter(attr, dflt, hasDefault)
	} else {
		if len(a) == 0 {
			return nil, typeErrorf("map requires a filter argument")
		}
		name := str(a[0])
		f, ok := ev.r.env.filters[name]
		if !ok {
			return nil, typeErrorf("No filter named %s.", strRepr(name))
		}
		rest := a[1:]
		fn = func(x any) (any, error) { return f(ev, x, rest, kw) }
	}
	out := make([]any, len(items))
	for i, it := range items {
		if out[i], err = fn(it); err != nil {
			return nil, err
		}
	}
	return gen("map", out), nil
}

func minMax(name string, want int) filterFunc {
	return func(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
		v, err := bind(name, a, kw, []string{"case_sensitive", "attribute"}, []any{false, nil})
		if err != nil {
			return nil, err
		}
		items, err := list(in)
		if err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return &Undefined{name: name, hint: "No aggregated item, sequence was empty."}, nil
		}
		cs, _ := truth(v[0])
		get := multiAttrGetter(v[1], cs)
		best := items[0]
		bk, err := get(best)
		if err != nil {
			return nil, err
		}
		for _, it := range items[1:] {
			k, err := get(it)
			if err != nil {
				return nil, err
			}
			c, err := compare(k, bk, "<")
			if err != nil {
				return nil, err
			}
			if c == want {
				best, bk = it, k
			}
		}
		return best, nil
	}
}

func filterPprint(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	s := pformat(in)
	if len(s) > 80 {
		return nil, unsupportedf("pprint of a value longer than 80 characters")
	}
	return s, nil
}

// pformat is pprint.pformat for values that fit on one line: dicts with
// their keys sorted.
func pformat(v any) string {
	switch x := v.(type) {
	case *Dict:
		keys := append([]any(nil), x.keys...)
		_ = sortValues(keys, func(k any) any { return k }, false)
		var parts []string
		for _, k := range keys {
			e, _ := x.get(k)
			parts = append(parts, repr(k)+": "+pformat(e))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *List:
		var parts []string
		for _, e := range x.items {
			parts = append(parts, pformat(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return repr(v)
}

func selectFilter(name string, keep, byAttr bool) filterFunc {
	return func(ev *evaluator, in any, a []any, kw *Dict) (any, error) {
		items, err := list(in)
		if err != nil {
			return nil, err
		}
		get := func(x any) (any, error) { return x, nil }
		if byAttr {
			if len(a) == 0 {
				return nil, typeErrorf("%s: missing the attribute", name)
			}
			get = attrGetter(a[0], nil, false)
			a = a[1:]
		}
		test := func(x any) (bool, error) { return truth(x) }
		if len(a) > 0 {
			tn := str(a[0])
			t, ok := ev.r.env.tests[tn]
			if !ok || t == nil {
				return nil, typeErrorf("No test named %s.", strRepr(tn))
			}
			rest := a[1:]
			test = func(x any) (bool, error) { return t(x, rest, kw) }
		}
		var out []any
		for _, it := range items {
			x, err := get(it)
			if err != nil {
				if byAttr {
					x = &Undefined{}
				} else {
					return nil, err
				}
			}
			var ok bool
			if u, isU := x.(*Undefined); isU {
				if len(a) == 0 {
					ok = false
				} else {
					return nil, u.err()
				}
			} else if ok, err = test(x); err != nil {
				return nil, err
			}
			if ok == keep {
				out = append(out, it)
			}
		}
		return gen(name, out), nil
	}
}

func filterReplace(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("replace", a, kw, []string{"old", "new", "count"}, []any{nil})
	if err != nil {
		return nil, err
	}
	n := -1
	if v[2] != nil {
		c, ok := toInt(v[2])
		if !ok {
			return nil, typeErrorf("replace: the count must be an integer")
		}
		n = int(c)
	}
	return pyReplace(soft(in), str(v[0]), str(v[1]), n), nil
}

// pyReplace is Python's str.replace (an empty old inserts new between
// every character).
func pyReplace(s, old, new string, n int) string {
	return strings.Replace(s, old, new, n)
}

func filterReverse(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	if isString(in) {
		r := []rune(str(in))
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	return gen("reverse", out), nil
}

func filterRound(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("round", a, kw, []string{"precision", "method"}, []any{int64(0), "common"})
	if err != nil {
		return nil, err
	}
	prec, ok := toInt(v[0])
	if !ok {
		return nil, typeErrorf("round: the precision must be an integer")
	}
	method := str(v[1])
	switch method {
	case "common":
		if i, ok := in.(int64); ok {
			if prec >= 0 {
				return i, nil
			}
			p := int64(math.Pow10(int(-prec)))
			return roundHalfEven(float64(i)/float64(p)) * float64(p), nil
		}
		f, ok := toFloat(in)
		if !ok {
			return nil, typeErrorf("type %s doesn't define __round__ method", typeName(in))
		}
		return pyRound(f, int(prec)), nil
	case "ceil", "floor":
		f, ok := toFloat(in)
		if !ok {
			return nil, typeErrorf("must be real number, not %s", typeName(in))
		}
		p := math.Pow(10, float64(prec))
		if method == "ceil" {
			return math.Ceil(f*p) / p, nil
		}
		return math.Floor(f*p) / p, nil
	}
	return nil, typeErrorf("method must be common, ceil or floor")
}

func roundHalfEven(f float64) float64 { return math.RoundToEven(f) }

// pyRound is Python's round(f, n) of a float: correctly rounded, half to
// even.
func pyRound(f float64, n int) float64 {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return f
	}
	if n >= 0 {
		s := strconv.FormatFloat(f, 'f', n, 64)
		r, _ := strconv.ParseFloat(s, 64)
		return r
	}
	p := math.Pow10(-n)
	return math.RoundToEven(f/p) * p
}

func filterSort(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("sort", a, kw, []string{"reverse", "case_sensitive", "attribute"}, []any{false, false, nil})
	if err != nil {
		return nil, err
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	items = append([]any(nil), items...)
	rev, _ := truth(v[0])
	cs, _ := truth(v[1])
	err = sortBy(items, multiAttrGetter(v[2], cs), rev)
	return &List{items}, err
}

func filterString(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	if m, ok := in.(Markup); ok {
		return m, nil
	}
	return printable(in)
}

var (
	tagRE     = regexp.MustCompile(`(?s)<!--.*?-->|<[^>]*>`)
	spacesRE  = regexp.MustCompile(`\s+`)
	wordRE    = regexp.MustCompile(`[\p{L}\p{N}_]+`) // Python's \w: Go's is ASCII
	xmlAttrRE = regexp.MustCompile(`[\s\v/>=]`)      // Python's ASCII \s holds \v
	chunkRE   = regexp.MustCompile(`\s+|\S+`)
)

func filterStriptags(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	s := tagRE.ReplaceAllString(str(in), "")
	s = strings.Join(strings.FieldsFunc(spacesRE.ReplaceAllString(s, " "), pyIsSpace), " ")
	return html.UnescapeString(s), nil
}

func filterSum(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("sum", a, kw, []string{"attribute", "start"}, []any{nil, int64(0)})
	if err != nil {
		return nil, err
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	get := attrGetter(v[0], nil, false)
	total := v[1]
	for _, it := range items {
		x, err := get(it)
		if err != nil {
			return nil, err
		}
		if total, err = binop("+", total, x); err != nil {
			return nil, err
		}
	}
	return total, nil
}

func filterTrim(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("trim", a, kw, []string{"chars"}, []any{nil})
	if err != nil {
		return nil, err
	}
	if v[0] == nil {
		return strings.TrimFunc(soft(in), pyIsSpace), nil
	}
	return strings.Trim(soft(in), str(v[0])), nil
}

func filterTruncate(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("truncate", a, kw, []string{"length", "killwords", "end", "leeway"}, []any{int64(255), false, "...", nil})
	if err != nil {
		return nil, err
	}
	s := []rune(soft(in))
	n, _ := toInt(v[0])
	kill, _ := truth(v[1])
	end := []rune(str(v[2]))
	leeway := int64(5)
	if v[3] != nil {
		leeway, _ = toInt(v[3])
	}
	if n < int64(len(end)) {
		return nil, typeErrorf("expected length >= %d, got %d", len(end), n)
	}
	if leeway < 0 {
		return nil, typeErrorf("expected leeway >= 0, got %d", leeway)
	}
	if int64(len(s)) <= n+leeway {
		return string(s), nil
	}
	cut := s[:n-int64(len(end))]
	if kill {
		return string(cut) + string(end), nil
	}
	str := string(cut)
	if i := strings.LastIndex(str, " "); i >= 0 {
		str = str[:i]
	}
	return str + string(end), nil
}

func filterUnique(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("unique", a, kw, []string{"case_sensitive", "attribute"}, []any{false, nil})
	if err != nil {
		return nil, err
	}
	items, err := list(in)
	if err != nil {
		return nil, err
	}
	cs, _ := truth(v[0])
	get := multiAttrGetter(v[1], cs)
	seen := NewDict()
	var out []any
	for _, it := range items {
		k, err := get(it)
		if err != nil {
			return nil, err
		}
		if _, ok := seen.get(k); ok {
			continue
		}
		if err := seen.put(k, true); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return gen("unique", out), nil
}

// urlQuote is Jinja2's url_quote: quote with "/" safe (and, for query
// parameters, "+" for spaces and "/" quoted too).
func urlQuote(v any, forQS bool) string {
	s := str(v)
	safe := "/"
	if forQS {
		safe = ""
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("_.-~", c) >= 0, strings.IndexByte(safe, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if forQS {
		return strings.ReplaceAll(b.String(), "%20", "+")
	}
	return b.String()
}

func filterUrlencode(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	var pairs []any
	switch x := in.(type) {
	case string, Markup:
		return urlQuote(x, false), nil
	case *Dict:
		pairs = (&dictView{"items", x}).items()
	default:
		items, err := list(in)
		if err != nil {
			return urlQuote(str(in), false), nil
		}
		pairs = items
	}
	var parts []string
	for _, p := range pairs {
		kv, ok := seqItems(p)
		if !ok || len(kv) != 2 {
			return nil, typeErrorf("urlencode: want (key, value) pairs")
		}
		parts = append(parts, urlQuote(kv[0], true)+"="+urlQuote(kv[1], true))
	}
	return strings.Join(parts, "&"), nil
}

func filterWordcount(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	return int64(len(wordRE.FindAllString(soft(in), -1))), nil
}

func filterWordwrap(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("wordwrap", a, kw, []string{"width", "break_long_words", "wrapstring", "break_on_hyphens"}, []any{int64(79), true, nil, true})
	if err != nil {
		return nil, err
	}
	width, _ := toInt(v[0])
	breakLong, _ := truth(v[1])
	wrap := "\n"
	if v[2] != nil {
		wrap = str(v[2])
	}
	hyphens, _ := truth(v[3])
	s := soft(in)
	if hyphens && strings.Contains(s, "-") {
		return nil, unsupportedf("wordwrap of text with hyphens (break_on_hyphens)")
	}
	var lines []string
	for _, line := range splitlines(s) {
		lines = append(lines, strings.Join(textwrap(line, int(width), breakLong), wrap))
	}
	return strings.Join(lines, wrap), nil
}

// splitlines is Python's str.splitlines(): a line ends at \r\n or at
// any of \n \r \v \f \x1c \x1d \x1e \x85 \u2028 \u2029.
func splitlines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexFunc(s, lineBoundary)
		if i < 0 {
			return append(lines, s)
		}
		lines = append(lines, s[:i])
		_, n := utf8.DecodeRuneInString(s[i:])
		if strings.HasPrefix(s[i:], "\r\n") {
			n = 2
		}
		s = s[i+n:]
	}
	return lines
}

func lineBoundary(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
		return true
	}
	return false
}

// textwrap is Python's textwrap.wrap(line, width, expand_tabs=False,
// replace_whitespace=False, break_on_hyphens=False).
func textwrap(text string, width int, breakLong bool) []string {
	chunks := chunkRE.FindAllString(text, -1)
	// reversed, as textwrap pops from the end
	for i, j := 0, len(chunks)-1; i < j; i, j = i+1, j-1 {
		chunks[i], chunks[j] = chunks[j], chunks[i]
	}
	isSpace := func(c string) bool { return strings.TrimFunc(c, pyIsSpace) == "" }
	var lines []string
	for len(chunks) > 0 {
		var cur []string
		curLen := 0
		if len(lines) > 0 && isSpace(chunks[len(chunks)-1]) {
			chunks = chunks[:len(chunks)-1]
		}
		for len(chunks) > 0 {
			l := utf8.RuneCountInString(chunks[len(chunks)-1])
			if curLen+l <= width {
				cur = append(cur, chunks[len(chunks)-1])
				chunks = chunks[:len(chunks)-1]
				curLen += l
			} else {
				break
			}
		}
		if len(chunks) > 0 && utf8.RuneCountInString(chunks[len(chunks)-1]) > width {
			// handle a long word
			spaceLeft := 1
			if width >= 1 {
				spaceLeft = width - curLen
			}
			last := []rune(chunks[len(chunks)-1])
			if breakLong {
				end := spaceLeft
				cur = append(cur, string(last[:end]))
				chunks[len(chunks)-1] = string(last[end:])
			} else if len(cur) == 0 {
				cur = append(cur, string(last))
				chunks = chunks[:len(chunks)-1]
			}
		}
		if len(cur) > 0 && isSpace(cur[len(cur)-1]) {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			lines = append(lines, strings.Join(cur, ""))
		}
	}
	return lines
}

func filterXmlattr(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("xmlattr", a, kw, []string{"autospace"}, []any{true})
	if err != nil {
		return nil, err
	}
	d, ok := in.(*Dict)
	if !ok {
		return nil, typeErrorf("xmlattr: want a dict")
	}
	var parts []string
	for k, x := range d.All() {
		if x == nil {
			continue
		}
		if _, ok := x.(*Undefined); ok {
			continue
		}
		ks := str(k)
		if xmlAttrRE.MatchString(ks) {
			return nil, typeErrorf("Invalid character in attribute name: %s", strRepr(ks))
		}
		parts = append(parts, string(escape(ks))+`="`+string(escape(x))+`"`)
	}
	rv := strings.Join(parts, " ")
	if sp, _ := truth(v[0]); sp && rv != "" {
		rv = " " + rv
	}
	return Markup(rv), nil
}

func filterTojson(_ *evaluator, in any, a []any, kw *Dict) (any, error) {
	v, err := bind("tojson", a, kw, []string{"indent"}, []any{nil})
	if err != nil {
		return nil, err
	}
	indent := -1
	if v[0] != nil {
		n, ok := toInt(v[0])
		if !ok {
			return nil, unsupportedf("tojson with a string indent")
		}
		indent = int(n)
	}
	var b strings.Builder
	if err := writeJSON(&b, in, indent, 0); err != nil {
		return nil, err
	}
	s := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`, "'", `\u0027`).Replace(b.String())
	return Markup(s), nil
}

// printable is str(v) for output: an error for what Jinja2 would print
// as a Python object's address.
func printable(v any) (string, error) {
	switch x := v.(type) {
	case *Undefined:
		if x.lenient {
			return "", nil
		}
		return "", x.err()
	case *generator:
		return "", unsupportedf("printing the generator %s returns (add | list)", x.name)
	case *dictView:
		return "dict_" + x.kind + "(" + repr(&List{x.items()}) + ")", nil
	case *groupTuple:
		return repr(tuple{x.grouper, x.list}), nil
	case *callable, *cycler, *joiner, *loopContext:
		return "", unsupportedf("printing a %s", typeName(v))
	}
	return str(v), nil
}
