"""Write coderanges.json, the golden file of TestStrPredicateCodePoints
(predicates_test.go): for each str predicate, the ranges [lo, hi] of
code points c for which Python's chr(c).PREDICATE() is true (for
xidcontinue: ('a' + chr(c)).isidentifier()), from
Python's unicodedata (the installed Python's Unicode version).

Regenerate:
    cd internal/jinja/testdata && python3 coderanges.py > coderanges.json
"""
import json
import sys
import unicodedata

PREDICATES = {
    p: (lambda c, p=p: getattr(c, p)())
    for p in ["isdecimal", "isnumeric", "isprintable", "istitle", "islower", "isupper", "isidentifier"]
}
# the code points that continue an identifier
PREDICATES["xidcontinue"] = lambda c: ("a" + c).isidentifier()


def ranges(pred):
    out = []
    for c in range(0x110000):
        if pred(chr(c)):
            if out and out[-1][1] == c - 1:
                out[-1][1] = c
            else:
                out.append([c, c])
    return out


json.dump({"unicode": unicodedata.unidata_version, "ranges": {p: ranges(f) for p, f in PREDICATES.items()}}, sys.stdout)
sys.stdout.write("\n")
