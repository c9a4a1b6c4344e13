"""Write numeric.json, the golden file of TestNumeric (numeric_test.go):
the str predicates isdigit, isalpha and isalnum, and the int and float
filters, on the strings where Python's Unicode definitions differ from
Go's (superscripts, fractions, Roman numerals, CJK numerals, digits of
other scripts, combining marks, digraphs, Python's white space),
rendered by Python's Jinja2, the reference.

Regenerate (python3-jinja2 installed):
    cd internal/jinja/testdata && python3 numeric.py > numeric.json

The environment is kiln's: StrictUndefined, no autoescape, the trailing
newline kept. Each case renders its template with the value s.
"""
import golden

PREDICATE_STRINGS = [
    "",
    "123",
    "²",  # superscript: Numeric_Type=Digit, not Nd
    "x²",
    "₇⁹",  # subscript, superscript
    "①⑴⒈❶",  # circled, parenthesized, full-stop digits
    "፩",  # Ethiopic digit one: Digit, category No
    "½",  # fraction: Numeric, not Digit
    "Ⅻⅷ",  # Roman numerals: Nl
    "一二三",  # CJK numerals: Lo, Numeric
    "١٢",  # Arabic-Indic digits: Nd
    "𝟘𝟙",  # mathematical digits: Nd
    "e\u0301",  # combining mark: Mn is neither alpha nor digit
    "ǅǆ",  # digraph: Lt, Ll
    "ʰª",  # modifier letter Lm, Lo
    "abc",
    "a½",
    "a1 ",
    "1.5",
]

PREDICATE_OPS = [
    "{{ s.isdigit() }} {{ s.isalpha() }} {{ s.isalnum() }}",
]

NUMBER_STRINGS = [
    "12",
    " 12 ",
    "\x1c12\x1f",  # Python white space Go lacks
    "\x1d-3\x1e",
    "\u200312\u3000",  # Unicode white space
    "\x8512\u2028",
    "\v7\f",
    "١٢",  # Arabic-Indic digits
    "-١٢٣",
    "１２",  # fullwidth digits
    "𝟙𝟚",  # mathematical digits
    "٣.٥",  # decimal digits in a float
    "1_000",
    "1__000",
    "_1",
    "1_",
    "0x1A",
    "0b101",
    "010",
    "12.7",
    "-12.7",
    "1e3",
    "1_0.5",
    "½",  # numeric but no decimal value
    "²",  # digit but no decimal value
    "Ⅻ",
    "1 2",
    "",
    "nan",
    "inf",
    "abc",
    "1a",
    ".5",
    "5.",
    "+.5",
    "-.5e1",
    "1e",
    "e5",
    "1E+5",
    "1.5e-3",
    "1_000.000_1",
    "1._5",
    "1_.5",
    "Infinity",
    "-iNF",
    "+nAn",
    "1e400",
    "0o17",
    "0O17",
    "0B1",
    "0X1f",
    "00",
    "0_0",
    "007",
    "0_7",
    "0x_1f",
    "1\xa0",
    "\u20281",
    "١_٠",
    "1e16",
    "0.1",
    "1e-5",
    "1234567890123456",
]

NUMBER_OPS = [
    "{{ s | int }}",
    "{{ s | int(-1) }}",
    "{{ s | int(base=16) }}",
    "{{ s | int(base=0) }}",
    "{{ s | int(base=2) }}",
    "{{ s | float }}",
    "{{ s | float(-1.5) }}",
]


def main():
    cases = [(t, s) for t in PREDICATE_OPS for s in PREDICATE_STRINGS]
    cases += [(t, s) for t in NUMBER_OPS for s in NUMBER_STRINGS]
    golden.write(cases)


main()
