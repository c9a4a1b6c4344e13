package jinja

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pyFormatFloat formats f as Python's "%.{prec}{verb}" does (verb f, e
// or g).
func pyFormatFloat(f float64, prec int, verb byte) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return floatRepr(f)
	}
	switch verb {
	case 'g', 'G':
		if prec == 0 {
			prec = 1
		}
		s := strconv.FormatFloat(f, 'e', prec-1, 64)
		mant, exps, _ := strings.Cut(s, "e")
		exp, _ := strconv.Atoi(exps)
		var out string
		if exp < -4 || exp >= prec {
			out = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
			if strings.Contains(mant, ".") {
				out = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
			}
			sign := "+"
			if exp < 0 {
				sign, exp = "-", -exp
			}
			out += "e" + sign + pad2(exp)
		} else {
			out = strconv.FormatFloat(f, 'f', max(prec-1-exp, 0), 64)
			if strings.Contains(out, ".") {
				out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
			}
		}
		if verb == 'G' {
			out = strings.ToUpper(out)
		}
		return out
	case 'e', 'E':
		s := strconv.FormatFloat(f, 'e', prec, 64)
		if verb == 'E' {
			s = strings.ToUpper(s)
		}
		return s
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// spec is a conversion's flags, width and precision.
type spec struct {
	fill     rune
	align    byte // < > ^ =, or 0
	sign     byte // + - space, or 0
	alt      bool
	zero     bool
	width    int
	grouping byte // , or _
	prec     int  // -1 when not given
	verb     byte
}

// formatValue formats v by sp (the shared core of % and format()).
func formatValue(v any, sp spec) (string, error) {
	var body string
	numeric := false
	neg := false
	switch sp.verb {
	case 's', 0:
		if sp.verb == 0 && isNumber(v) {
			if _, ok := v.(bool); !ok {
				numeric = true
			}
			if f, ok := v.(float64); ok && sp.prec >= 0 {
				body = pyFormatFloat(math.Abs(f), sp.prec, 'g')
				neg = math.Signbit(f)
				break
			}
			if numeric {
				body = str(v)
				if strings.HasPrefix(body, "-") {
					neg, body = true, body[1:]
				}
				break
			}
		}
		body = str(v)
		if sp.prec >= 0 && utf8.RuneCountInString(body) > sp.prec {
			body = string([]rune(body)[:sp.prec])
		}
	case 'r', 'a':
		body = repr(v)
		if sp.prec >= 0 && utf8.RuneCountInString(body) > sp.prec {
			body = string([]rune(body)[:sp.prec])
		}
	case 'd', 'i', 'u', 'x', 'X', 'o', 'b', 'n':
		numeric = true
		i, ok := toInt(v)
		if !ok {
			f, isF := v.(float64)
			if !isF || sp.verb != 'd' && sp.verb != 'i' && sp.verb != 'u' {
				return "", typeErrorf("%%%c format: an integer is required, not %s", sp.verb, typeName(v))
			}
			i = int64(f)
		}
		neg = i < 0
		u := uint64(i)
		if neg {
			u = uint64(-i)
		}
		switch sp.verb {
		case 'x', 'X':
			body = strconv.FormatUint(u, 16)
			if sp.alt {
				body = "0x" + body
			}
			if sp.verb == 'X' {
				body = strings.ToUpper(body)
			}
		case 'o':
			body = strconv.FormatUint(u, 8)
			if sp.alt {
				body = "0o" + body
			}
		case 'b':
			body = strconv.FormatUint(u, 2)
			if sp.alt {
				body = "0b" + body
			}
		default:
			body = strconv.FormatUint(u, 10)
		}
	case 'f', 'F', 'e', 'E', 'g', 'G', '%':
		numeric = true
		f, ok := toFloat(v)
		if !ok {
			return "", typeErrorf("must be real number, not %s", typeName(v))
		}
		prec := sp.prec
		if prec < 0 {
			prec = 6
		}
		neg = math.Signbit(f) && !math.IsNaN(f)
		f = math.Abs(f)
		if sp.verb == '%' {
			body = pyFormatFloat(f*100, prec, 'f') + "%"
		} else {
			verb := sp.verb
			if verb == 'F' {
				verb = 'f'
			}
			body = pyFormatFloat(f, prec, verb)
			if sp.alt && (verb == 'g' || verb == 'G') {
				return "", unsupportedf("the # flag with %%g")
			}
		}
	case 'c':
		if i, ok := toInt(v); ok {
			body = string(rune(i))
		} else if s, ok := v.(string); ok && utf8.RuneCountInString(s) == 1 {
			body = s
		} else {
			return "", typeErrorf("%%c requires int or char")
		}
	default:
		return "", unsupportedf("the format conversion %q", string(sp.verb))
	}
	if numeric && sp.grouping != 0 {
		int_, frac, _ := strings.Cut(body, ".")
		if strings.ContainsAny(int_, "0123456789") && !strings.ContainsAny(int_, "abcdefxABCDEFX") {
			var b strings.Builder
			for i, c := range int_ {
				if i > 0 && (len(int_)-i)%3 == 0 {
					b.WriteByte(sp.grouping)
				}
				b.WriteRune(c)
			}
			body = b.String()
			if frac != "" || strings.Contains(body, ".") {
				body += "." + frac
			}
		}
	}
	signStr := ""
	if numeric {
		switch {
		case neg:
			signStr = "-"
		case sp.sign == '+':
			signStr = "+"
		case sp.sign == ' ':
			signStr = " "
		}
	}
	n := utf8.RuneCountInString(signStr + body)
	if n >= sp.width {
		return signStr + body, nil
	}
	padN := sp.width - n
	fill := string(sp.fill)
	align := sp.align
	if align == 0 {
		switch {
		case sp.zero && numeric:
			align, fill = '=', "0"
		case numeric:
			align = '>'
		default:
			align = '<'
		}
	}
	switch align {
	case '<':
		return signStr + body + strings.Repeat(fill, padN), nil
	case '>':
		return strings.Repeat(fill, padN) + signStr + body, nil
	case '^':
		l := padN / 2
		return strings.Repeat(fill, l) + signStr + body + strings.Repeat(fill, padN-l), nil
	}
	return signStr + strings.Repeat(fill, padN) + body, nil
}

// printf is Python's str % args.
func printf(format string, args any) (any, error) {
	var pos []any
	var named *Dict
	switch a := args.(type) {
	case tuple:
		pos = a
	case *Dict:
		named = a
		pos = []any{a}
	default:
		pos = []any{a}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(format) {
			return nil, typeErrorf("incomplete format")
		}
		if format[i] == '%' {
			b.WriteByte('%')
			continue
		}
		var v any
		haveV := false
		if format[i] == '(' {
			j := strings.IndexByte(format[i:], ')')
			if j < 0 || named == nil {
				return nil, typeErrorf("format requires a mapping")
			}
			key := format[i+1 : i+j]
			x, ok := named.Get(key)
			if !ok {
				return nil, typeErrorf("KeyError: %s", strRepr(key))
			}
			v, haveV = x, true
			i += j + 1
		}
		sp := spec{fill: ' ', prec: -1}
		for ; i < len(format) && strings.IndexByte("-+ #0", format[i]) >= 0; i++ {
			switch format[i] {
			case '-':
				sp.align = '<'
			case '+':
				sp.sign = '+'
			case ' ':
				if sp.sign == 0 {
					sp.sign = ' '
				}
			case '#':
				sp.alt = true
			case '0':
				sp.zero = true
			}
		}
		readNum := func() (int, error) {
			if i < len(format) && format[i] == '*' {
				i++
				if next >= len(pos) {
					return 0, typeErrorf("not enough arguments for format string")
				}
				n, ok := toInt(pos[next])
				next++
				if !ok {
					return 0, typeErrorf("* wants int")
				}
				return int(n), nil
			}
			j := i
			for i < len(format) && '0' <= format[i] && format[i] <= '9' {
				i++
			}
			n, _ := strconv.Atoi(format[j:i])
			return n, nil
		}
		w, err := readNum()
		if err != nil {
			return nil, err
		}
		sp.width = w
		if i < len(format) && format[i] == '.' {
			i++
			if sp.prec, err = readNum(); err != nil {
				return nil, err
			}
		}
		for i < len(format) && strings.IndexByte("hlL", format[i]) >= 0 {
			i++
		}
		if i >= len(format) {
			return nil, typeErrorf("incomplete format")
		}
		sp.verb = format[i]
		if sp.verb == 'F' {
			sp.verb = 'f'
		}
		if sp.zero && sp.align == 0 {
			sp.fill = '0'
		}
		if sp.align == '<' {
			sp.zero = false
		}
		if !haveV {
			if next >= len(pos) {
				return nil, typeErrorf("not enough arguments for format string")
			}
			v = pos[next]
			next++
		}
		if u, ok := v.(*Undefined); ok {
			return nil, u.err()
		}
		if strings.IndexByte("sraducioxXeEfgGc", sp.verb) < 0 {
			return nil, typeErrorf("unsupported format character '%c' (0x%x) at index %d", sp.verb, sp.verb, i)
		}
		if sp.verb == 's' || sp.verb == 'r' || sp.verb == 'a' {
			sp.zero = false
			if sp.align == 0 {
				sp.align = '>'
			}
		} else if sp.zero && sp.align == 0 {
			sp.align = 0
		}
		if sp.prec >= 0 && (sp.verb == 'd' || sp.verb == 'i' || sp.verb == 'u' || sp.verb == 'x' || sp.verb == 'X' || sp.verb == 'o') {
			return nil, unsupportedf("a precision with %%%c", sp.verb)
		}
		if sp.verb == 'u' || sp.verb == 'i' {
			sp.verb = 'd'
		}
		if (sp.verb == 'o') && sp.alt {
			// Python's %#o is 0o…, as format()'s
		}
		s, err := formatValue(v, sp)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
	}
	if named == nil && next < len(pos) {
		if _, isT := args.(tuple); isT || next == 0 {
			return nil, typeErrorf("not all arguments converted during string formatting")
		}
	}
	return b.String(), nil
}

// strFormat is Python's str.format.
func strFormat(format string, a []any, kw *Dict) (any, error) {
	var b strings.Builder
	auto := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '{' && i+1 < len(format) && format[i+1] == '{':
			b.WriteByte('{')
			i++
			continue
		case c == '}' && i+1 < len(format) && format[i+1] == '}':
			b.WriteByte('}')
			i++
			continue
		case c == '}':
			return nil, typeErrorf("Single '}' encountered in format string")
		case c != '{':
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(format[i:], '}')
		if j < 0 {
			return nil, typeErrorf("Single '{' encountered in format string")
		}
		field := format[i+1 : i+j]
		i += j
		if strings.ContainsRune(field, '{') {
			return nil, unsupportedf("nested fields in str.format()")
		}
		conv := byte(0)
		fieldName, specStr, _ := strings.Cut(field, ":")
		if k := strings.IndexByte(fieldName, '!'); k >= 0 {
			if k+2 != len(fieldName) {
				return nil, typeErrorf("expected ':' after conversion specifier")
			}
			conv = fieldName[k+1]
			fieldName = fieldName[:k]
		}
		first := fieldName
		rest := ""
		if k := strings.IndexAny(fieldName, ".["); k >= 0 {
			first, rest = fieldName[:k], fieldName[k:]
		}
		var v any
		switch {
		case first == "":
			if auto >= len(a) {
				return nil, typeErrorf("Replacement index %d out of range for positional args tuple", auto)
			}
			v = a[auto]
			auto++
		case first[0] >= '0' && first[0] <= '9':
			n, err := strconv.Atoi(first)
			if err != nil || n >= len(a) {
				return nil, typeErrorf("Replacement index %s out of range for positional args tuple", first)
			}
			v = a[n]
		default:
			x, ok := kw.Get(first)
			if !ok {
				return nil, typeErrorf("KeyError: %s", strRepr(first))
			}
			v = x
		}
		for rest != "" {
			if rest[0] == '.' {
				k := strings.IndexAny(rest[1:], ".[")
				name := rest[1:]
				if k >= 0 {
					name, rest = rest[1:k+1], rest[k+1:]
				} else {
					rest = ""
				}
				x, ok := getattr(v, name)
				if !ok {
					return nil, typeErrorf("'%s' object has no attribute '%s'", typeName(v), name)
				}
				v = x
			} else {
				k := strings.IndexByte(rest, ']')
				if k < 0 {
					return nil, typeErrorf("Missing ']' in format string")
				}
				key := rest[1:k]
				rest = rest[k+1:]
				var kv any = key
				if n, err := strconv.ParseInt(key, 10, 64); err == nil {
					kv = n
				}
				x, ok, err := getitem(v, kv)
				if err != nil || !ok {
					return nil, typeErrorf("KeyError: %s", repr(kv))
				}
				v = x
			}
		}
		if u, ok := v.(*Undefined); ok {
			return nil, u.err()
		}
		switch conv {
		case 'r', 'a':
			v = repr(v)
		case 's':
			v = str(v)
		case 0:
		default:
			return nil, typeErrorf("Unknown conversion specifier %c", conv)
		}
		sp, err := parseSpec(specStr)
		if err != nil {
			return nil, err
		}
		if sp.verb == 0 && specStr == "" {
			b.WriteString(str(v))
			continue
		}
		if isString(v) && sp.verb != 0 && sp.verb != 's' {
			return nil, typeErrorf("Unknown format code '%c' for object of type 'str'", sp.verb)
		}
		if isInt(v) && strings.IndexByte("fFeEgG%", sp.verb) >= 0 {
			f, _ := toFloat(v)
			v = f
		}
		if _, isF := v.(float64); isF && strings.IndexByte("dxXobc", sp.verb) >= 0 {
			return nil, typeErrorf("Unknown format code '%c' for object of type 'float'", sp.verb)
		}
		s, err := formatValue(v, sp)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// parseSpec parses format()'s mini-language.
func parseSpec(s string) (spec, error) {
	sp := spec{fill: ' ', prec: -1}
	r := []rune(s)
	i := 0
	isAlign := func(c rune) bool { return c == '<' || c == '>' || c == '^' || c == '=' }
	if len(r) >= 2 && isAlign(r[1]) {
		sp.fill, sp.align = r[0], byte(r[1])
		i = 2
	} else if len(r) >= 1 && isAlign(r[0]) {
		sp.align = byte(r[0])
		i = 1
	}
	if i < len(r) && (r[i] == '+' || r[i] == '-' || r[i] == ' ') {
		sp.sign = byte(r[i])
		i++
	}
	if i < len(r) && r[i] == '#' {
		sp.alt = true
		i++
	}
	if i < len(r) && r[i] == '0' {
		sp.zero = true
		if sp.align == 0 {
			sp.fill, sp.align = '0', '='
		}
		i++
	}
	j := i
	for i < len(r) && '0' <= r[i] && r[i] <= '9' {
		i++
	}
	sp.width, _ = strconv.Atoi(string(r[j:i]))
	if i < len(r) && (r[i] == ',' || r[i] == '_') {
		sp.grouping = byte(r[i])
		i++
	}
	if i < len(r) && r[i] == '.' {
		i++
		j := i
		for i < len(r) && '0' <= r[i] && r[i] <= '9' {
			i++
		}
		sp.prec, _ = strconv.Atoi(string(r[j:i]))
	}
	if i < len(r) {
		sp.verb = byte(r[i])
		i++
	}
	if i != len(r) {
		return sp, typeErrorf("Invalid format specifier")
	}
	return sp, nil
}
