package jinja

import (
	"errors"
	"fmt"
)

// Pos is a position in a template: its name (slash-separated, as the
// loader was asked for it), line and column (1-based, in bytes).
type Pos struct {
	Name      string
	Line, Col int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.Name, p.Line, p.Col) }

// Error is an error of a template, at Pos. Undefined is set for an
// undefined name or attribute: its dotted name, with Top for a missing
// top-level name.
type Error struct {
	Pos       Pos
	Msg       string
	Undefined string
	Top       bool
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// posError is an error that does not know its position yet: the
// evaluator gives it the position of the node it happened at.
type posError struct{ msg string }

func (e *posError) Error() string { return e.msg }

func typeErrorf(format string, args ...any) error {
	return &posError{msg: fmt.Sprintf(format, args...)}
}

// unsupportedf is the error of a construct kiln refuses.
func unsupportedf(format string, args ...any) error {
	return &posError{msg: "Jinja2 " + fmt.Sprintf(format, args...) + " is not supported by kiln"}
}

// at gives err the position p, unless it has one.
func at(err error, p Pos) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var pe *posError
	if errors.As(err, &pe) {
		return &Error{Pos: p, Msg: pe.msg}
	}
	return &Error{Pos: p, Msg: err.Error()}
}

// err is the error of using u.
func (u *Undefined) err() error {
	msg := fmt.Sprintf("undefined variable %q", u.name)
	if u.hint != "" {
		msg = u.hint
	}
	return &Error{Pos: u.pos, Msg: msg, Undefined: u.name, Top: u.top && u.hint == ""}
}
