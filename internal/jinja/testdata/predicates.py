"""Write predicates.json, the golden file of TestStrPredicates
(predicates_test.go): the str predicates isdecimal, isnumeric,
isprintable, isascii, istitle and isidentifier on the strings where Python's Unicode
definitions differ from Go's (superscripts, fractions, Roman numerals,
CJK numerals, combining marks, digraphs, title-case words, control and
format characters, private use, unassigned code points), rendered by
Python's Jinja2, the reference.

Regenerate (python3-jinja2 installed):
    cd internal/jinja/testdata && python3 predicates.py > predicates.json

Each case renders its template with the value s.
"""
import golden

STRINGS = [
    "",
    "123",
    "²",  # superscript: Numeric_Type=Digit, not Nd
    "₇⁹",
    "①⑴⒈❶",
    "፩",  # Ethiopic digit: No
    "½",  # fraction: Numeric
    "Ⅻⅷ",  # Roman numerals: Nl
    "一二三",  # CJK numerals: Lo, Numeric
    "万亿",  # CJK numerals: Lo, Numeric
    "零壹",
    "丁",  # a CJK ideograph that is no number
    "١٢",  # Arabic-Indic digits: Nd
    "𝟘𝟙",  # mathematical digits: Nd
    "１２",  # fullwidth digits
    "e\u0301",  # combining mark
    "ǅ",  # digraph: Lt
    "ǅǆ",
    "ǅa",
    "Ǆa",
    "ǈubljana",
    "Hello World",
    "Hello world",
    "HELLO",
    "Hello  World 2",
    "Hello_World",
    "He'Llo",
    "1A",
    "A1b",
    "ʰA",  # modifier letter Lm is not cased
    "Aʰb",
    "ᾈ",  # Greek capital with prosgegrammeni: Lt
    "Ⓐ",  # circled letter: Other_Uppercase, So
    "Ⓐb",
    "ⓐ",
    "abc",
    "abc def",
    " ",
    "a b",
    "\t",
    "\n",
    "\x7f",
    "\x1f",
    "\x85",
    "\xa0",  # no-break space: Zs
    "\xad",  # soft hyphen: Cf
    "a\u200db",  # zero-width joiner: Cf
    "\u2028",  # line separator: Zl
    "\u2029",
    "\u3000",
    "\ue000",  # private use: Co
    "\U000f0000",
    "\u0378",  # unassigned in both
    "\U000e01f0",  # unassigned in both
    "\ufeff",
    "~",
    "\x00",
    "é",
    "ascii only!",
    "caf\xe9",
    "\x80",
]

IDENTIFIERS = [
    "",
    "_",
    "_1",
    "1a",
    "a1",
    "abc_def",
    "a-b",
    "a b",
    "café",
    "e\u0301",  # combining mark: continues, does not start
    "\u0301e",
    "ǅ",
    "Ⅻ",  # Roman numeral Nl: starts
    "a²",  # superscript No: neither
    "a١",  # Arabic-Indic digit Nd: continues
    "١a",
    "℘",  # Other_ID_Start
    "a·",  # Other_ID_Continue
    "·a",
    "ͺ",  # ID_Start but not XID_Start (NFKC)
    "aͺ",
    "゛",  # ID_Start but not XID_Start
    "a゛",
    "ﾞ",  # halfwidth voiced mark: XID_Continue, not XID_Start
    "aﾞ",
    "ำ",  # Thai sara am: XID_Continue, not XID_Start
    "aำ",
    "ﱞ",  # Arabic ligature: not XID
    "a\u200d",  # zero-width joiner: not XID_Continue
    "一二",
    "ª",
    "a\ue000",
    "a\u0378",
    "if",  # keywords are identifiers to str.isidentifier
    "None",
]

OPS = [
    "{{ s.isdecimal() }} {{ s.isnumeric() }} {{ s.isprintable() }} {{ s.isascii() }} {{ s.istitle() }}",
]


def main():
    cases = [(t, s) for t in OPS for s in STRINGS]
    cases += [("{{ s.isidentifier() }}", s) for s in IDENTIFIERS]
    golden.write(cases)


main()
