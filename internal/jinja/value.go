package jinja

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// List is Python's list (mutable: append changes it for every holder).
type List struct{ items []any }

// tuple is Python's tuple.
type tuple []any

// Markup is a string that is already escaped (what escape returns).
type Markup string

// rangeValue is Python's range.
type rangeValue struct{ start, stop, step int64 }

func (r rangeValue) len() int64 {
	if r.step > 0 && r.start < r.stop {
		return (r.stop - r.start + r.step - 1) / r.step
	}
	if r.step < 0 && r.start > r.stop {
		return (r.start - r.stop - r.step - 1) / -r.step
	}
	return 0
}

// Undefined is a name or attribute that is not defined. Using it for
// anything but the defined tests and the default filter is an error.
type Undefined struct {
	name string // the dotted name, as written
	hint string // why, when it is not a plain missing name
	pos  Pos
	top  bool // a missing top-level name (not an attribute)
	// lenient is Jinja2's plain Undefined (an inline if without else):
	// it prints as "", is false, iterates as empty
	lenient bool
}

// namespace is what namespace() returns.
type namespace struct{ attrs *Dict }

// cycler is what cycler() returns.
type cycler struct {
	items []any
	pos   int
}

// joiner is what joiner() returns.
type joiner struct {
	sep  string
	used bool
}

// module is an imported template.
type module struct {
	name    string
	exports *Dict
}

// callable is a built-in function or bound method.
type callable struct {
	name string
	fn   func(e *evaluator, args []any, kw *Dict) (any, error)
}

func typeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Markup:
		return "Markup"
	case *List:
		return "list"
	case tuple:
		return "tuple"
	case *Dict:
		return "dict"
	case rangeValue:
		return "range"
	case *Undefined:
		return "StrictUndefined"
	case *namespace:
		return "Namespace"
	case *cycler:
		return "Cycler"
	case *joiner:
		return "Joiner"
	case *macro:
		return "Macro"
	case *generator:
		return "generator"
	case *dictView:
		return "dict_" + x.kind
	case *groupTuple:
		return "_GroupTuple"
	case *loopContext:
		return "LoopContext"
	case *module:
		return "TemplateModule"
	case *callable:
		return "builtin_function_or_method"
	default:
		return fmt.Sprintf("%T", x)
	}
}

// truth is Python's bool(v).
func truth(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case float64:
		return x != 0, nil
	case string:
		return x != "", nil
	case Markup:
		return x != "", nil
	case *List:
		return len(x.items) > 0, nil
	case tuple:
		return len(x) > 0, nil
	case *Dict:
		return x.Len() > 0, nil
	case rangeValue:
		return x.len() > 0, nil
	case *dictView:
		return x.d.Len() > 0, nil
	case *Undefined:
		if x.lenient {
			return false, nil
		}
		return false, x.err()
	}
	return true, nil
}

// str is Python's str(v); v must not be Undefined.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case Markup:
		return string(x)
	}
	return repr(v)
}

// repr is Python's repr(v).
func repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(floatRepr(x))
	case string:
		b.WriteString(strRepr(x))
	case Markup:
		b.WriteString("Markup(" + strRepr(string(x)) + ")")
	case *List:
		writeSeq(b, "[", "]", x.items)
	case tuple:
		if len(x) == 1 {
			b.WriteString("(")
			writeRepr(b, x[0])
			b.WriteString(",)")
			return
		}
		writeSeq(b, "(", ")", x)
	case *Dict:
		b.WriteString("{")
		i := 0
		for k, e := range x.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			i++
			writeRepr(b, k)
			b.WriteString(": ")
			writeRepr(b, e)
		}
		b.WriteString("}")
	case rangeValue:
		if x.step == 1 {
			fmt.Fprintf(b, "range(%d, %d)", x.start, x.stop)
		} else {
			fmt.Fprintf(b, "range(%d, %d, %d)", x.start, x.stop, x.step)
		}
	case *namespace:
		b.WriteString("<Namespace ")
		writeRepr(b, x.attrs)
		b.WriteString(">")
	case *macro:
		fmt.Fprintf(b, "<Macro '%s'>", x.name)
	case *module:
		fmt.Fprintf(b, "<TemplateModule '%s'>", x.name)
	case *Undefined:
		b.WriteString("Undefined")
	case *groupTuple:
		writeRepr(b, tuple{x.grouper, x.list})
	case *dictView:
		b.WriteString("dict_" + x.kind + "(")
		writeRepr(b, &List{x.items()})
		b.WriteString(")")
	default:
		fmt.Fprintf(b, "<%s object>", typeName(v))
	}
}

func writeSeq(b *strings.Builder, open, close string, items []any) {
	b.WriteString(open)
	for i, e := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(b, e)
	}
	b.WriteString(close)
}

// strRepr is Python's repr of a str.
func strRepr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && !isPrintable(r):
			switch {
			case r <= 0xff:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

func isPrintable(r rune) bool {
	if r == utf8.RuneError {
		return false
	}
	return strconv.IsPrint(r)
}

// floatRepr is Python's repr of a float.
func floatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exps, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(exps)
	neg := strings.HasPrefix(mant, "-")
	mant = strings.TrimPrefix(mant, "-")
	digits := strings.Replace(mant, ".", "", 1)
	var out string
	if exp < -4 || exp >= 16 {
		out = digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		out += fmt.Sprintf("e%s%02d", sign, exp)
	} else if exp < 0 {
		out = "0." + strings.Repeat("0", -exp-1) + digits
	} else {
		if len(digits) <= exp+1 {
			out = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
		} else {
			out = digits[:exp+1] + "." + digits[exp+1:]
		}
	}
	if neg {
		out = "-" + out
	}
	return out
}

// toFloat returns a number as a float64.
func toFloat(v any) (float64, bool) {
	if f, ok := v.(float64); ok {
		return f, true
	}
	i, ok := toInt(v)
	return float64(i), ok
}

// toInt returns an int or bool as an int64.
func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64, bool:
		return true
	}
	return false
}

func isString(v any) bool {
	switch v.(type) {
	case string, Markup:
		return true
	}
	return false
}

// equal is Python's ==.
func equal(a, b any) bool {
	if isNumber(a) && isNumber(b) {
		ai, aok := toInt(a)
		bi, bok := toInt(b)
		if aok && bok {
			return ai == bi
		}
		af, _ := toFloat(a)
		bf, _ := toFloat(b)
		return af == bf
	}
	if isString(a) && isString(b) {
		return str(a) == str(b)
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case *List:
		y, ok := b.(*List)
		return ok && seqEqual(x.items, y.items)
	case tuple:
		y, ok := b.(tuple)
		return ok && seqEqual(x, y)
	case *Dict:
		y, ok := b.(*Dict)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for k, v := range x.All() {
			w, ok := y.get(k)
			if !ok || !equal(v, w) {
				return false
			}
		}
		return true
	case rangeValue:
		y, ok := b.(rangeValue)
		return ok && seqEqual(x.items(), y.items())
	}
	return a == b
}

func seqEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (r rangeValue) items() []any {
	n := r.len()
	l := make([]any, 0, n)
	for i := int64(0); i < n; i++ {
		l = append(l, r.start+i*r.step)
	}
	return l
}

// compare is Python's ordering of a and b: -1, 0 or 1, or a TypeError
// for op.
func compare(a, b any, op string) (int, error) {
	if isNumber(a) && isNumber(b) {
		ai, aok := toInt(a)
		bi, bok := toInt(b)
		if aok && bok {
			return cmpOrdered(ai, bi), nil
		}
		af, _ := toFloat(a)
		bf, _ := toFloat(b)
		return cmpOrdered(af, bf), nil
	}
	if isString(a) && isString(b) {
		return strings.Compare(str(a), str(b)), nil
	}
	as, aok := seqItems(a)
	bs, bok := seqItems(b)
	if aok && bok && typeName(a) == typeName(b) {
		for i := 0; i < len(as) && i < len(bs); i++ {
			if equal(as[i], bs[i]) {
				continue
			}
			return compare(as[i], bs[i], op)
		}
		return cmpOrdered(len(as), len(bs)), nil
	}
	return 0, typeErrorf("'%s' not supported between instances of '%s' and '%s'", op, typeName(a), typeName(b))
}

func cmpOrdered[T int | int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seqItems returns the items of a list or tuple.
func seqItems(v any) ([]any, bool) {
	switch x := v.(type) {
	case *List:
		return x.items, true
	case tuple:
		return x, true
	}
	return nil, false
}

// iterate returns the items iterating v gives, as Python's iter(v).
func iterate(v any) ([]any, error) {
	switch x := v.(type) {
	case *List:
		return append([]any(nil), x.items...), nil
	case tuple:
		return x, nil
	case *Dict:
		return append([]any(nil), x.keys...), nil
	case string:
		return strChars(x), nil
	case Markup:
		return strChars(string(x)), nil
	case rangeValue:
		if x.len() > maxRange {
			return nil, unsupportedf("range() of more than %d numbers", maxRange)
		}
		return x.items(), nil
	case *Undefined:
		if x.lenient {
			return nil, nil
		}
		return nil, x.err()
	case *generator, *dictView:
		return list(x)
	case *groupTuple:
		return []any{x.grouper, x.list}, nil
	}
	return nil, typeErrorf("'%s' object is not iterable", typeName(v))
}

// maxRange bounds what a range may hold once listed.
const maxRange = 1_000_000

func strChars(s string) []any {
	l := make([]any, 0, len(s))
	for _, r := range s {
		l = append(l, string(r))
	}
	return l
}

// length is Python's len(v).
func length(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case Markup:
		return int64(utf8.RuneCountInString(string(x))), nil
	case *List:
		return int64(len(x.items)), nil
	case tuple:
		return int64(len(x)), nil
	case *Dict:
		return int64(x.Len()), nil
	case rangeValue:
		return x.len(), nil
	case *dictView:
		return int64(x.d.Len()), nil
	case *namespace:
		return 0, typeErrorf("object of type 'Namespace' has no len()")
	case *Undefined:
		if x.lenient {
			return 0, nil
		}
		return 0, x.err()
	}
	return 0, typeErrorf("object of type '%s' has no len()", typeName(v))
}

// contains is Python's needle in hay.
func contains(hay, needle any) (bool, error) {
	switch x := hay.(type) {
	case string, Markup:
		if !isString(needle) {
			return false, typeErrorf("'in <string>' requires string as left operand, not %s", typeName(needle))
		}
		return strings.Contains(str(hay), str(needle)), nil
	case *Dict:
		if _, err := hashKey(needle); err != nil {
			return false, err
		}
		_, ok := x.get(needle)
		return ok, nil
	case *Undefined:
		return false, x.err()
	}
	items, err := iterate(hay)
	if err != nil {
		return false, typeErrorf("argument of type '%s' is not iterable", typeName(hay))
	}
	for _, e := range items {
		if equal(e, needle) {
			return true, nil
		}
	}
	return false, nil
}

// checkInt reports an int result that overflowed int64 (Python's ints
// are unbounded: kiln's are not, and says so).
func checkInt(b *big.Int) (int64, error) {
	if !b.IsInt64() {
		return 0, unsupportedf("an integer beyond 64 bits (%s…)", b.String()[:min(20, len(b.String()))])
	}
	return b.Int64(), nil
}

// sortValues sorts l as Python's sorted() would, with key applied.
func sortValues(l []any, key func(any) any, reverse bool) error {
	var err error
	sort.SliceStable(l, func(i, j int) bool {
		a, b := key(l[i]), key(l[j])
		if reverse {
			a, b = b, a
		}
		c, e := compare(a, b, "<")
		if e != nil && err == nil {
			err = e
		}
		return c < 0
	})
	return err
}
