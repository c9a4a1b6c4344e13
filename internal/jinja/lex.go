package jinja

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is Jinja2's lexer, for kiln's settings: the default
// delimiters, no line statements, trim_blocks and lstrip_blocks off.

type tokKind int

const (
	tData tokKind = iota
	tVarBegin
	tVarEnd
	tBlockBegin
	tBlockEnd
	tName
	tString
	tInt
	tFloat
	tOp
	tEOF
)

type token struct {
	kind tokKind
	val  string // the data, name, operator; a string's value; a number's text
	off  int    // offset in the source
}

// source is a template's text with its line starts.
type source struct {
	name  string
	text  string
	lines []int // offsets of line starts
}

func newSource(name, text string) *source {
	s := &source{name: name, text: text, lines: []int{0}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

func (s *source) pos(off int) Pos {
	i := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off }) - 1
	return Pos{Name: s.name, Line: i + 1, Col: off - s.lines[i] + 1}
}

type lexer struct {
	src  *source
	toks []token
}

func (l *lexer) errorf(off int, format string, args ...any) error {
	return &Error{Pos: l.src.pos(off), Msg: "template: " + fmt.Sprintf(format, args...)}
}

// normalizeNewlines turns \r\n and \r into \n, as Jinja2 does in data.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func lex(src *source) ([]token, error) {
	l := &lexer{src: src}
	if err := l.run(); err != nil {
		return nil, err
	}
	return l.toks, nil
}

// nextTag finds the next {{, {% or {# at or after i.
func nextTag(s string, i int) int {
	for {
		j := strings.IndexByte(s[i:], '{')
		if j < 0 || i+j+1 >= len(s) {
			return -1
		}
		j += i
		switch s[j+1] {
		case '{', '%', '#':
			return j
		}
		i = j + 1
	}
}

func (l *lexer) data(text string, off int) {
	if text != "" {
		l.toks = append(l.toks, token{kind: tData, val: normalizeNewlines(text), off: off})
	}
}

func (l *lexer) run() error {
	s := l.src.text
	i := 0
	lstrip := false // the last tag ended with -: strip the next data's leading space
	for i < len(s) {
		j := nextTag(s, i)
		end := j
		if j < 0 {
			end = len(s)
		}
		text := s[i:end]
		if lstrip {
			text = strings.TrimLeftFunc(text, pyIsSpace)
			i = end - len(text)
		}
		lstrip = false
		if j < 0 {
			l.data(text, i)
			break
		}
		sign := byte(0)
		if j+2 < len(s) && (s[j+2] == '-' || s[j+2] == '+') {
			sign = s[j+2]
		}
		if sign == '-' {
			text = strings.TrimRightFunc(text, pyIsSpace)
		}
		// a raw block is data
		if s[j+1] == '%' {
			if raw, after, rawLstrip, ok := l.raw(j, sign); ok {
				l.data(text, i)
				if raw.err != nil {
					return raw.err
				}
				l.data(raw.text, raw.off)
				i, lstrip = after, rawLstrip
				continue
			}
		}
		l.data(text, i)
		inner := j + 2
		if sign != 0 {
			inner++
		}
		var err error
		switch s[j+1] {
		case '#':
			k := strings.Index(s[inner:], "#}")
			if k < 0 {
				return l.errorf(j, "missing end of comment tag")
			}
			k += inner
			lstrip = k > inner && s[k-1] == '-'
			i = k + 2
			continue
		case '{':
			l.toks = append(l.toks, token{kind: tVarBegin, off: j})
			i, lstrip, err = l.expr(inner, "}}")
		case '%':
			l.toks = append(l.toks, token{kind: tBlockBegin, off: j})
			i, lstrip, err = l.expr(inner, "%}")
		}
		if err != nil {
			return err
		}
	}
	l.toks = append(l.toks, token{kind: tEOF, off: len(s)})
	return nil
}

type rawText struct {
	text string
	off  int
	err  error
}

// raw reads a {% raw %} block starting at j: the raw text, the offset
// after {% endraw %} and whether that tag strips what follows.
func (l *lexer) raw(j int, sign byte) (rawText, int, bool, bool) {
	s := l.src.text
	k := j + 2
	if sign != 0 {
		k++
	}
	k = skipSpace(s, k)
	if !strings.HasPrefix(s[k:], "raw") || nameRuneAt(s, k+3) {
		return rawText{}, 0, false, false
	}
	k = skipSpace(s, k+3)
	stripStart := false
	switch {
	case strings.HasPrefix(s[k:], "-%}"):
		stripStart = true
		k += 3
	case strings.HasPrefix(s[k:], "%}"):
		k += 2
	default:
		return rawText{}, 0, false, false
	}
	start := k
	// find {% endraw %}
	for {
		e := strings.Index(s[k:], "{%")
		if e < 0 {
			return rawText{err: l.errorf(j, "missing end of raw directive")}, 0, false, true
		}
		e += k
		m := e + 2
		endSign := byte(0)
		if m < len(s) && (s[m] == '-' || s[m] == '+') {
			endSign = s[m]
			m++
		}
		m = skipSpace(s, m)
		if !strings.HasPrefix(s[m:], "endraw") {
			k = e + 2
			continue
		}
		m = skipSpace(s, m+6)
		after, lstrip := 0, false
		switch {
		case strings.HasPrefix(s[m:], "-%}"):
			after, lstrip = m+3, true
		case strings.HasPrefix(s[m:], "+%}"):
			after = m + 3
		case strings.HasPrefix(s[m:], "%}"):
			after = m + 2
		default:
			k = e + 2
			continue
		}
		text := s[start:e]
		if stripStart {
			text = strings.TrimLeftFunc(text, pyIsSpace)
			start = e - len(text)
		}
		if endSign == '-' {
			text = strings.TrimRightFunc(text, pyIsSpace)
		}
		return rawText{text: text, off: start}, after, lstrip, true
	}
}

// skipSpace skips Python's white space (str.isspace, as the \s of
// Jinja2's lexer) from i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !pyIsSpace(r) {
			break
		}
		i += n
	}
	return i
}

// nameRuneAt reports whether a name's code point (as expr scans names)
// begins at i.
func nameRuneAt(s string, i int) bool {
	if i >= len(s) || !isNameByte(s[i]) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r < 0x80 || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func isNameByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80
}

var operators = []string{"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}

// expr tokenizes a tag's inside from i up to its closer; it returns the
// offset after the closer and whether it strips what follows.
func (l *lexer) expr(i int, closer string) (int, bool, error) {
	s := l.src.text
	endKind := tVarEnd
	if closer == "%}" {
		endKind = tBlockEnd
	}
	depth := 0
	for {
		i = skipSpace(s, i)
		if i >= len(s) {
			what := "variable"
			if closer == "%}" {
				what = "block"
			}
			return 0, false, l.errorf(i, "unexpected end of template: the %s tag is not closed with %q", what, closer)
		}
		if depth == 0 {
			if strings.HasPrefix(s[i:], "-"+closer) {
				l.toks = append(l.toks, token{kind: endKind, off: i})
				return i + 3, true, nil
			}
			if closer == "%}" && strings.HasPrefix(s[i:], "+%}") {
				l.toks = append(l.toks, token{kind: endKind, off: i})
				return i + 3, false, nil
			}
			if strings.HasPrefix(s[i:], closer) {
				l.toks = append(l.toks, token{kind: endKind, off: i})
				return i + 2, false, nil
			}
		}
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return 0, false, l.errorf(i, "unexpected end of string")
			}
			v, err := unescape(s[i+1 : j])
			if err != nil {
				return 0, false, l.errorf(i, "%v", err)
			}
			l.toks = append(l.toks, token{kind: tString, val: v, off: i})
			i = j + 1
		case '0' <= c && c <= '9':
			j, kind := number(s, i)
			l.toks = append(l.toks, token{kind: kind, val: s[i:j], off: i})
			i = j
		case isNameByte(c):
			j := i
			for j < len(s) && isNameByte(s[j]) {
				if s[j] >= 0x80 {
					r, n := utf8.DecodeRuneInString(s[j:])
					if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
						break
					}
					j += n
					continue
				}
				j++
			}
			if j == i {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return 0, false, l.errorf(i, "unexpected char %q", r)
			}
			l.toks = append(l.toks, token{kind: tName, val: s[i:j], off: i})
			i = j
		default:
			op := ""
			for _, o := range operators {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return 0, false, l.errorf(i, "unexpected char %q", r)
			}
			switch op {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				depth--
				if depth < 0 {
					return 0, false, l.errorf(i, "unexpected %q", op)
				}
			}
			l.toks = append(l.toks, token{kind: tOp, val: op, off: i})
			i += len(op)
		}
	}
}

// number scans an integer or float literal at i.
func number(s string, i int) (int, tokKind) {
	isDig := func(c byte) bool { return '0' <= c && c <= '9' || c == '_' }
	if s[i] == '0' && i+1 < len(s) && strings.IndexByte("bBoOxX", s[i+1]) >= 0 {
		j := i + 2
		for j < len(s) && (isDig(s[j]) || strings.IndexByte("abcdefABCDEF", s[j]) >= 0) {
			j++
		}
		return j, tInt
	}
	j := i
	for j < len(s) && isDig(s[j]) {
		j++
	}
	kind := tInt
	if j+1 < len(s) && s[j] == '.' && '0' <= s[j+1] && s[j+1] <= '9' {
		kind = tFloat
		j++
		for j < len(s) && isDig(s[j]) {
			j++
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && '0' <= s[k] && s[k] <= '9' {
			kind = tFloat
			j = k
			for j < len(s) && isDig(s[j]) {
				j++
			}
		}
	}
	return j, kind
}

// unescape reads a string literal's escapes as Python's unicode-escape
// codec does.
func unescape(s string) (string, error) {
	s = normalizeNewlines(s)
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j < i+3 && '0' <= s[j] && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[i:j], 8, 32)
			b.WriteRune(rune(n))
			i = j - 1
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+1+n > len(s) {
				return "", fmt.Errorf("truncated \\%c escape in a string", e)
			}
			v, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
			if err != nil || v > unicode.MaxRune {
				return "", fmt.Errorf("bad \\%c escape in a string", e)
			}
			b.WriteRune(rune(v))
			i += n
		case 'N':
			return "", fmt.Errorf("Jinja2 \\N{...} escapes are not supported by kiln")
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return b.String(), nil
}
