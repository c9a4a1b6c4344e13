"""Write whitespace.json, the golden file of TestWhitespace
(whitespace_test.go): the lexer's white-space control (a tag's - strips the
white space next to it), white space inside tags, and xmlattr's check of
attribute names, on Python's white space that Go's unicode.IsSpace or
regexp's \\s lack (\\x1c-\\x1f, \\v) and on non-ASCII white space,
rendered by Python's Jinja2, the reference. A case whose render raises
records the error message in "err" instead of "want".

Regenerate (python3-jinja2 installed):
    cd internal/jinja/testdata && python3 whitespace.py > whitespace.json

The environment is kiln's: StrictUndefined, no autoescape, the trailing
newline kept. Each case renders its template with the value s.
"""
import golden

SPACES = ["\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029", "\v", "\f", "\xa0", "\u3000", " \t\n"]

# {W} is the white space under test
TEMPLATES = [
    "a{W}{{{{- 1 -}}}}{W}b",
    "a{W}{{%- if 1 -%}}{W}b{W}{{%- endif -%}}{W}c",
    "a{W}{{#- c -#}}{W}b",
    "a{W}{{%- raw -%}}{W}x{W}{{%- endraw -%}}{W}b",
    "a{W}{{{{ 1 }}}}{W}b",  # no -: kept
    "{{{{{W}1{W}+{W}2{W}}}}}",  # white space between tokens
    "{{%{W}if{W}1{W}%}}y{{%{W}endif{W}%}}",
    "{{%{W}raw{W}%}}r{{%{W}endraw{W}%}}",
    "{{{{ {{'a' ~ s ~ 'b': 1}} | xmlattr }}}}",
]


def main():
    cases = [(t.format(W=w), w) for t in TEMPLATES for w in SPACES]
    cases += [("{{ {s: 1} | xmlattr }}", key) for key in ["a/b", "a>b", "a=b", "a\tb", "a b", "ab"]]
    golden.write(cases)


main()
