"""The shared part of the scripts that write the golden tables
(casing.py, numeric.py, whitespace.py): kiln's environment in Python's
Jinja2, the reference, and the table's JSON form.
"""
import json
import sys

import jinja2


def write(cases):
    """Render each (template, s) of cases with the value s in kiln's
    environment (StrictUndefined, no autoescape, the trailing newline
    kept) and write the table to stdout: template, s and want, or err
    when the render raises."""
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    out = []
    for t, s in cases:
        case = {"template": t, "s": s}
        try:
            case["want"] = env.from_string(t).render(s=s)
        except (jinja2.TemplateError, ValueError) as e:
            case["err"] = str(e)
        out.append(case)
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
