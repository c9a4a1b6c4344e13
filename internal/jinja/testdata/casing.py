"""Write casing.json, the golden file of TestCasing (casing_test.go): each
case, line and white-space operation of strings, on plain ASCII and on
the strings where Unicode's full case mapping, final sigma, title case,
and Python's line boundaries, white space and \\w matter, rendered by
Python's Jinja2, the reference.

Regenerate (python3-jinja2 installed):
    cd internal/jinja/testdata && python3 casing.py > casing.json

The environment is kiln's: StrictUndefined, no autoescape, the trailing
newline kept. Each case renders its template with the value s.
"""
import golden

STRINGS = [
    "hello World",  # plain ASCII
    "straße ẞ",  # ß upper-cases to SS, title-cases to Ss; ẞ lower-cases to ß
    "ﬁne ﬂow ﬀ",  # ligatures: upper FI, title Fi
    "İstanbul",  # İ lower-cases to two code points
    "ΟΔΟΣ ΑΣ Σ ΑΣΑ Α'Σ Α..Σ Α.Σ.",  # final sigma in its contexts
    "ΑΣ\u0301 Α\u0345Σ ΑΣ\u0301Α ΑΣ:Α ΑΣ·",  # ... across case-ignorable code points
    "ǆemal ǅ Ǆ",  # digraphs: title case differs from upper case
    "ŉ ǰ ᾳ ᾀ ΐ և",  # SpecialCasing: several code points, title ≠ upper
    "ⓐⓑ ª ʰ",  # cased symbols and modifier letters (Other_Lowercase)
    "中a ʼn x1y a_b",  # title: a letter after a non-cased character
    "a\u00a0b\u2003c\vd\x1ce-f(g[h{i<j",  # title filter's word beginnings
    "ABC ǅ",  # isupper with a title-case letter
    "abc ß",
    "ABC ß",
]

LINES = [
    "a\nb\r\nc\rd",
    "a\vb\fc\x1cd\x1de\x1ef\x85g\u2028h\u2029i",
    "x\u2028",
    "\v\n\f",
    "one two\x1cthree four five\u2029six",
    "",
]

CASE_OPS = [
    "{{ s | upper }}",
    "{{ s | lower }}",
    "{{ s | capitalize }}",
    "{{ s | title }}",
    "{{ s.upper() }}",
    "{{ s.lower() }}",
    "{{ s.capitalize() }}",
    "{{ s.title() }}",
    "{{ s.swapcase() }}",
    "{{ s is upper }} {{ s is lower }} {{ s.isupper() }} {{ s.islower() }}",
    "{% for w in s.split() %}{{ w is upper }}{{ w is lower }}{{ w.isupper() }}{{ w.islower() }} {% endfor %}",
]

LINE_OPS = [
    "{{ s.splitlines() | join('|') }}/{{ s.splitlines() | length }}",
    "{{ s | indent(2) }}",
    "{{ s | indent(2, true) }}",
    "{{ s | indent('> ', blank=true) }}",
    "{{ s | wordwrap(9) }}",
    "{{ s | wordwrap(9, wrapstring='|') }}",
]

# Python's white space includes \x1c-\x1f
SPACES = [
    "\x1c a\u2003b\x1fc \x1e",
    " \x1d\t",
    "a\u2003b\u3000c",  # multi-byte white space
]

SPACE_OPS = [
    "[{{ s.split() | join('|') }}] [{{ s.rsplit(none, 1) | join('|') }}] [{{ s.split(none, 1) | join('|') }}]",
    "[{{ s.strip() }}] [{{ s.lstrip() }}] [{{ s.rstrip() }}] [{{ s | trim }}] [{{ s.isspace() }}]",
    "[{{ s | striptags }}] [{{ s | wordcount }}]",
]

# wordcount's \w is Python's: letters and numbers of any script, and _
WORDS = ["straße café ǅx 中文 1½ Ⅻ e\u0301 a_b x-y"]

# case-insensitive comparisons lower-case as str.lower() does
OTHER = [
    ("{{ s.split() | unique | join(',') }}", "ΑΣ ας ß SS ǅ ǆ"),
    ("{{ s.split() | sort | join(',') }}", "b İ a ß ς Σ"),
    ("{{ s.split() | max }} {{ s.split() | min }}", "ΑΣ ασ"),
    ("{{ s.split() | map('upper') | join(',') }}", "ß ﬁ ǆ"),
    ("{{ ['a'] is lower }} {{ ['A'] is upper }} {{ 42 is lower }} {{ none is lower }}", ""),
]


def main():
    cases = [(t, s) for t in CASE_OPS for s in STRINGS]
    cases += [(t, s) for t in LINE_OPS for s in LINES]
    cases += [(t, s) for t in SPACE_OPS for s in SPACES]
    cases += [("{{ s | wordcount }}", s) for s in WORDS]
    cases += OTHER
    golden.write(cases)


main()
