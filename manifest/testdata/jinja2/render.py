"""Render kiln's differential template cases with Python's Jinja2, the
reference (manifest/jinja2_test.go runs it).

stdin: a JSON list of {"name", "dir", "file", "values"}: render dir/file
with values. stdout: a JSON object of name -> {"out": TEXT} or
{"error": "TYPE: MESSAGE"}.

The environment is kiln's: StrictUndefined, no autoescape, the trailing
newline kept, trim_blocks and lstrip_blocks off, templates loaded from
the case's directory only.
"""
import json
import sys

import jinja2


def render(case):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(case["dir"]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    try:
        return {"out": env.get_template(case["file"]).render(case["values"])}
    except Exception as e:  # every error is a result to compare
        return {"error": "%s: %s" % (type(e).__name__, e)}


def main():
    cases = json.load(sys.stdin)
    json.dump({c["name"]: render(c) for c in cases}, sys.stdout)


main()
