// Package jinja renders Jinja2 templates as Python's Jinja2 3.1 renders
// them, with the environment kiln uses: StrictUndefined, no autoescape,
// the trailing newline kept, trim_blocks and lstrip_blocks off.
//
// Values follow Python's: None, bool, int (int64; an overflow is an
// error), float (printed as Python's repr), str, list, tuple, dict (a
// [*Dict], which keeps the order of its keys), range, and Jinja2's own
// objects (loop, macro, namespace, cycler, joiner). Go values given to
// [Template.Render] are converted ([FromGo]): map[string]any becomes a
// Dict with its keys sorted (a Go map has no order: give a *Dict to keep
// one), slices lists, every integer type int.
//
// Every statement, expression, filter, test and global of Jinja2's
// Template Designer Documentation is implemented, except the few listed
// in docs/templates.md (extends and block, autoescape, the random and
// urlize filters, lipsum, printing a generator, …), which fail with
// "Jinja2 CONSTRUCT is not supported by kiln" at the construct's
// position. An undefined name, attribute,
// filter or test is an error at its file, line and column, through
// includes, imports and macros ([*Error]).
//
// Templates are read from an [fs.FS] only (kiln gives a sandboxed one),
// by relative slash-separated names that may not leave it.
//
// # Size
//
// The package is far above the ~1,500 lines kiln's packages keep to (about
// 7,500), on purpose: a template engine is one noun. Its lexer, parser
// and evaluator share the AST, the positions and Jinja2's value model
// (value.go, dict.go), and filters, tests and methods are the bulk; split
// into packages they would export all of that to no other user.
package jinja
