package jinja

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// unsupportedMethod is a Python method kiln does not implement: reading
// it is an error naming it.
type unsupportedMethod struct{ typ string }

// Python's methods kiln does not implement, by type.
var unsupportedMethods = map[string]string{
	"casefold": "str", "encode": "str", "expandtabs": "str", "format_map": "str",
	"maketrans": "str", "rpartition": "str", "translate": "str", "rindex": "str",
	"fromkeys": "dict", "popitem": "dict",
}

func fn(name string, f func(a []any, kw *Dict) (any, error)) *callable {
	return &callable{name: name, fn: func(_ *evaluator, a []any, kw *Dict) (any, error) { return f(a, kw) }}
}

// method returns obj's method called name, bound to obj.
func method(obj any, name string) (any, bool) {
	switch o := obj.(type) {
	case string:
		return strMethod(o, name)
	case Markup:
		return strMethod(string(o), name)
	case *List:
		return listMethod(o, name)
	case tuple:
		return seqMethod(o, name)
	case *Dict:
		return dictMethod(o, name)
	case *cycler:
		return o.method(name)
	case *groupTuple:
		switch name {
		case "grouper":
			return o.grouper, true
		case "list":
			return o.list, true
		}
	}
	return nil, false
}

func seqMethod(items []any, name string) (any, bool) {
	switch name {
	case "count":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, kw, []string{"value"}, nil)
			if err != nil {
				return nil, err
			}
			n := int64(0)
			for _, it := range items {
				if equal(it, v[0]) {
					n++
				}
			}
			return n, nil
		}), true
	case "index":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, kw, []string{"value"}, nil)
			if err != nil {
				return nil, err
			}
			for i, it := range items {
				if equal(it, v[0]) {
					return int64(i), nil
				}
			}
			return nil, typeErrorf("%s is not in list", repr(v[0]))
		}), true
	}
	return nil, false
}

func listMethod(l *List, name string) (any, bool) {
	if m, ok := seqMethod(l.items, name); ok {
		return m, true
	}
	one := func(f func(v any) (any, error)) *callable {
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, kw, []string{"value"}, nil)
			if err != nil {
				return nil, err
			}
			return f(v[0])
		})
	}
	switch name {
	case "append":
		return one(func(v any) (any, error) { l.items = append(l.items, v); return nil, nil }), true
	case "extend":
		return one(func(v any) (any, error) {
			items, err := list(v)
			l.items = append(l.items, items...)
			return nil, err
		}), true
	case "remove":
		return one(func(v any) (any, error) {
			for i, it := range l.items {
				if equal(it, v) {
					l.items = append(l.items[:i:i], l.items[i+1:]...)
					return nil, nil
				}
			}
			return nil, typeErrorf("list.remove(x): x not in list")
		}), true
	case "insert":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, kw, []string{"index", "object"}, nil)
			if err != nil {
				return nil, err
			}
			i, ok := toInt(v[0])
			if !ok {
				return nil, typeErrorf("list.insert: the index must be an integer")
			}
			n := int64(len(l.items))
			if i < 0 {
				i = max(i+n, 0)
			}
			i = min(i, n)
			l.items = append(l.items[:i:i], append([]any{v[1]}, l.items[i:]...)...)
			return nil, nil
		}), true
	case "pop":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, kw, []string{"index"}, []any{int64(-1)})
			if err != nil {
				return nil, err
			}
			i, _ := toInt(v[0])
			n := int64(len(l.items))
			if i < 0 {
				i += n
			}
			if i < 0 || i >= n {
				return nil, typeErrorf("pop index out of range")
			}
			x := l.items[i]
			l.items = append(l.items[:i:i], l.items[i+1:]...)
			return x, nil
		}), true
	case "reverse":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			for i, j := 0, len(l.items)-1; i < j; i, j = i+1, j-1 {
				l.items[i], l.items[j] = l.items[j], l.items[i]
			}
			return nil, nil
		}), true
	case "sort":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, nil, kw, []string{"reverse"}, []any{false})
			if err != nil || len(a) > 0 {
				return nil, unsupportedf("list.sort() with arguments other than reverse")
			}
			rev, _ := truth(v[0])
			return nil, sortValues(l.items, func(x any) any { return x }, rev)
		}), true
	case "copy":
		return fn(name, func([]any, *Dict) (any, error) { return &List{append([]any(nil), l.items...)}, nil }), true
	case "clear":
		return fn(name, func([]any, *Dict) (any, error) { l.items = nil; return nil, nil }), true
	}
	return nil, false
}

func dictMethod(d *Dict, name string) (any, bool) {
	switch name {
	case "items", "keys", "values":
		return fn(name, func([]any, *Dict) (any, error) { return &dictView{name, d}, nil }), true
	case "get":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, nil, []string{"key", "default"}, []any{nil})
			if err != nil {
				return nil, err
			}
			if _, err := hashKey(v[0]); err != nil {
				return nil, err
			}
			if x, ok := d.get(v[0]); ok {
				return x, nil
			}
			return v[1], nil
		}), true
	case "pop":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			if len(a) < 1 || len(a) > 2 {
				return nil, typeErrorf("pop expected 1 or 2 arguments")
			}
			if x, ok := d.get(a[0]); ok {
				d.del(a[0])
				return x, nil
			}
			if len(a) == 2 {
				return a[1], nil
			}
			return nil, typeErrorf("KeyError: %s", repr(a[0]))
		}), true
	case "setdefault":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := bind(name, a, nil, []string{"key", "default"}, []any{nil})
			if err != nil {
				return nil, err
			}
			if x, ok := d.get(v[0]); ok {
				return x, nil
			}
			return v[1], d.put(v[0], v[1])
		}), true
	case "update":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			for _, x := range a {
				src, ok := x.(*Dict)
				if !ok {
					return nil, unsupportedf("dict.update() of a %s", typeName(x))
				}
				for k, v := range src.All() {
					_ = d.put(k, v)
				}
			}
			for k, v := range kw.All() {
				_ = d.put(k, v)
			}
			return nil, nil
		}), true
	case "copy":
		return fn(name, func([]any, *Dict) (any, error) { return d.Copy(), nil }), true
	case "clear":
		return fn(name, func([]any, *Dict) (any, error) { *d = *NewDict(); return nil, nil }), true
	}
	if t, ok := unsupportedMethods[name]; ok && t == "dict" {
		return &unsupportedMethod{typ: "dict"}, true
	}
	return nil, false
}

func strArgs(name string, a []any, kw *Dict, names []string, dflt []any) ([]any, error) {
	return bind("str."+name, a, kw, names, dflt)
}

func strMethod(s string, name string) (any, bool) {
	noArgs := func(f func(string) any) *callable {
		return fn(name, func(a []any, kw *Dict) (any, error) {
			if len(a) > 0 || kw.Len() > 0 {
				return nil, typeErrorf("str.%s() takes no arguments", name)
			}
			return f(s), nil
		})
	}
	strip := func(f func(string, string) string, g func(string, func(rune) bool) string) *callable {
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"chars"}, []any{nil})
			if err != nil {
				return nil, err
			}
			if v[0] == nil {
				return g(s, pyIsSpace), nil
			}
			return f(s, str(v[0])), nil
		})
	}
	pred := func(f func(rune) bool) *callable {
		return noArgs(func(s string) any {
			if s == "" {
				return false
			}
			for _, r := range s {
				if !f(r) {
					return false
				}
			}
			return true
		})
	}
	switch name {
	case "upper":
		return noArgs(func(s string) any { return pyUpper(s) }), true
	case "lower":
		return noArgs(func(s string) any { return pyLower(s) }), true
	case "capitalize":
		return noArgs(func(s string) any { return pyCapitalize(s) }), true
	case "title":
		return noArgs(func(s string) any { return pyTitle(s) }), true
	case "swapcase":
		return noArgs(func(s string) any { return pySwapcase(s) }), true
	case "strip":
		return strip(strings.Trim, strings.TrimFunc), true
	case "lstrip":
		return strip(strings.TrimLeft, strings.TrimLeftFunc), true
	case "rstrip":
		return strip(strings.TrimRight, strings.TrimRightFunc), true
	case "isdigit":
		return pred(pyIsDigit), true
	case "isalpha":
		return pred(unicode.IsLetter), true
	case "isalnum":
		return pred(pyIsAlnum), true
	case "isspace":
		return pred(pyIsSpace), true
	case "islower":
		return noArgs(func(s string) any { return pyIsLower(s) }), true
	case "isupper":
		return noArgs(func(s string) any { return pyIsUpper(s) }), true
	case "isdecimal":
		return pred(pyIsDecimal), true
	case "isnumeric":
		return pred(pyIsNumeric), true
	case "isprintable":
		return noArgs(func(s string) any { return all(s, pyIsPrintable) }), true
	case "isascii":
		return noArgs(func(s string) any { return all(s, pyIsASCII) }), true
	case "istitle":
		return noArgs(func(s string) any { return pyIsTitle(s) }), true
	case "isidentifier":
		return noArgs(func(s string) any { return pyIsIdentifier(s) }), true
	case "splitlines":
		return noArgs(func(s string) any {
			var l []any
			for _, x := range splitlines(s) {
				l = append(l, x)
			}
			return &List{l}
		}), true
	case "split", "rsplit":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"sep", "maxsplit"}, []any{nil, int64(-1)})
			if err != nil {
				return nil, err
			}
			n, _ := toInt(v[1])
			var parts []string
			if v[0] == nil {
				parts = splitSpace(s, int(n), name == "rsplit")
			} else {
				sep := str(v[0])
				if sep == "" {
					return nil, typeErrorf("empty separator")
				}
				switch {
				case n < 0:
					parts = strings.Split(s, sep)
				case name == "split":
					parts = strings.SplitN(s, sep, int(n)+1)
				default:
					parts = rsplitN(s, sep, int(n))
				}
			}
			l := make([]any, len(parts))
			for i, p := range parts {
				l[i] = p
			}
			return &List{l}, nil
		}), true
	case "join":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"iterable"}, nil)
			if err != nil {
				return nil, err
			}
			items, err := list(v[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				if !isString(it) {
					return nil, typeErrorf("sequence item %d: expected str instance, %s found", i, typeName(it))
				}
				parts[i] = str(it)
			}
			return strings.Join(parts, s), nil
		}), true
	case "replace":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"old", "new", "count"}, []any{int64(-1)})
			if err != nil {
				return nil, err
			}
			n, _ := toInt(v[2])
			return pyReplace(s, str(v[0]), str(v[1]), int(n)), nil
		}), true
	case "startswith", "endswith":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"prefix"}, nil)
			if err != nil {
				return nil, err
			}
			var cands []any
			if t, ok := v[0].(tuple); ok {
				cands = t
			} else {
				cands = []any{v[0]}
			}
			for _, c := range cands {
				if !isString(c) {
					return nil, typeErrorf("%s first arg must be str or a tuple of str, not %s", name, typeName(c))
				}
				if (name == "startswith" && strings.HasPrefix(s, str(c))) || (name == "endswith" && strings.HasSuffix(s, str(c))) {
					return true, nil
				}
			}
			return false, nil
		}), true
	case "removeprefix":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"prefix"}, nil)
			if err != nil {
				return nil, err
			}
			return strings.TrimPrefix(s, str(v[0])), nil
		}), true
	case "removesuffix":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"suffix"}, nil)
			if err != nil {
				return nil, err
			}
			return strings.TrimSuffix(s, str(v[0])), nil
		}), true
	case "count", "find", "rfind", "index":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"sub"}, nil)
			if err != nil {
				return nil, err
			}
			sub := str(v[0])
			switch name {
			case "count":
				if sub == "" {
					return int64(utf8.RuneCountInString(s) + 1), nil
				}
				return int64(strings.Count(s, sub)), nil
			case "rfind":
				i := strings.LastIndex(s, sub)
				if i < 0 {
					return int64(-1), nil
				}
				return int64(utf8.RuneCountInString(s[:i])), nil
			}
			i := strings.Index(s, sub)
			if i < 0 {
				if name == "index" {
					return nil, typeErrorf("substring not found")
				}
				return int64(-1), nil
			}
			return int64(utf8.RuneCountInString(s[:i])), nil
		}), true
	case "center", "ljust", "rjust":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"width", "fillchar"}, []any{" "})
			if err != nil {
				return nil, err
			}
			w, _ := toInt(v[0])
			fill := str(v[1])
			if utf8.RuneCountInString(fill) != 1 {
				return nil, typeErrorf("The fill character must be exactly one character long")
			}
			n := int64(utf8.RuneCountInString(s))
			if w <= n {
				return s, nil
			}
			switch name {
			case "ljust":
				return s + strings.Repeat(fill, int(w-n)), nil
			case "rjust":
				return strings.Repeat(fill, int(w-n)) + s, nil
			}
			return center(s, w, fill), nil
		}), true
	case "zfill":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"width"}, nil)
			if err != nil {
				return nil, err
			}
			w, _ := toInt(v[0])
			n := int64(utf8.RuneCountInString(s))
			if w <= n {
				return s, nil
			}
			sign := ""
			rest := s
			if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
				sign, rest = s[:1], s[1:]
			}
			return sign + strings.Repeat("0", int(w-n)) + rest, nil
		}), true
	case "partition":
		return fn(name, func(a []any, kw *Dict) (any, error) {
			v, err := strArgs(name, a, kw, []string{"sep"}, nil)
			if err != nil {
				return nil, err
			}
			sep := str(v[0])
			before, after, ok := strings.Cut(s, sep)
			if !ok {
				return tuple{s, "", ""}, nil
			}
			return tuple{before, sep, after}, nil
		}), true
	case "format":
		return fn(name, func(a []any, kw *Dict) (any, error) { return strFormat(s, a, kw) }), true
	}
	if t, ok := unsupportedMethods[name]; ok && t == "str" {
		return &unsupportedMethod{typ: "str"}, true
	}
	return nil, false
}

// pyIsSpace is Python's str.isspace for one code point: Go's white
// space and the separators \x1c-\x1f.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || '\x1c' <= r && r <= '\x1f' }

// splitSpace is Python's str.split() (and rsplit()) without a separator.
func splitSpace(s string, n int, right bool) []string {
	if n < 0 {
		return strings.FieldsFunc(s, pyIsSpace)
	}
	if right {
		var out []string
		rest := strings.TrimRightFunc(s, pyIsSpace)
		for len(out) < n && rest != "" {
			i := strings.LastIndexFunc(rest, pyIsSpace)
			if i < 0 {
				break
			}
			_, w := utf8.DecodeRuneInString(rest[i:])
			out = append([]string{rest[i+w:]}, out...)
			rest = strings.TrimRightFunc(rest[:i], pyIsSpace)
		}
		if rest != "" {
			out = append([]string{rest}, out...)
		}
		return out
	}
	var out []string
	rest := strings.TrimLeftFunc(s, pyIsSpace)
	for len(out) < n && rest != "" {
		i := strings.IndexFunc(rest, pyIsSpace)
		if i < 0 {
			break
		}
		out = append(out, rest[:i])
		rest = strings.TrimLeftFunc(rest[i:], pyIsSpace)
	}
	if rest != "" {
		out = append(out, rest)
	}
	return out
}

func rsplitN(s, sep string, n int) []string {
	var out []string
	for len(out) < n {
		i := strings.LastIndex(s, sep)
		if i < 0 {
			break
		}
		out = append([]string{s[i+len(sep):]}, out...)
		s = s[:i]
	}
	return append([]string{s}, out...)
}
