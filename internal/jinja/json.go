package jinja

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// writeJSON writes v as Python's json.dumps(v, sort_keys=True,
// indent=indent) does (indent < 0: none), ensure_ascii included.
func writeJSON(b *strings.Builder, v any, indent, level int) error {
	nl := func(l int) {
		if indent >= 0 {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat(" ", indent*l))
		}
	}
	sep := ", "
	if indent >= 0 {
		sep = ","
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		case math.IsNaN(x):
			b.WriteString("NaN")
		default:
			b.WriteString(floatRepr(x))
		}
	case string:
		jsonString(b, x)
	case Markup:
		jsonString(b, string(x))
	case *List, tuple:
		items, _ := seqItems(x)
		if len(items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, e := range items {
			if i > 0 {
				b.WriteString(sep)
			}
			nl(level + 1)
			if err := writeJSON(b, e, indent, level+1); err != nil {
				return err
			}
		}
		nl(level)
		b.WriteByte(']')
	case *Dict:
		if x.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := append([]any(nil), x.keys...)
		if err := sortValues(keys, func(k any) any { return k }, false); err != nil {
			return err
		}
		b.WriteByte('{')
		for i, k := range keys {
			var ks string
			switch kk := k.(type) {
			case string:
				ks = kk
			case int64, float64:
				ks = str(kk)
			case bool:
				ks = map[bool]string{true: "true", false: "false"}[kk]
			case nil:
				ks = "null"
			default:
				return typeErrorf("keys must be str, int, float, bool or None, not %s", typeName(k))
			}
			if i > 0 {
				b.WriteString(sep)
			}
			nl(level + 1)
			jsonString(b, ks)
			b.WriteString(": ")
			e, _ := x.get(k)
			if err := writeJSON(b, e, indent, level+1); err != nil {
				return err
			}
		}
		nl(level)
		b.WriteByte('}')
	case *Undefined:
		return x.err()
	case *dictView:
		return typeErrorf("Object of type dict_%s is not JSON serializable", x.kind)
	default:
		return typeErrorf("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func jsonString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20 || (r > 0x7f && r <= 0xffff):
				b.WriteString(`\u` + hex4(r))
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				b.WriteString(`\u` + hex4(r1) + `\u` + hex4(r2))
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func hex4(r rune) string {
	s := strconv.FormatInt(int64(r), 16)
	return strings.Repeat("0", 4-len(s)) + s
}
