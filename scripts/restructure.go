//go:build ignore

// restructure.go rewrites kiln's Go files after scripts/restructure.sh has
// moved package directories (issue 22); the script runs it as
//
//	go run scripts/restructure.go OLD=NEW[@ALIAS] ...
//
// with the module-relative directories of every move. For each .go file
// of the repository (testdata and node_modules left out) it:
//
//   - rewrites every import of OLD, or of a package below OLD, to NEW;
//   - when the package's name changes (lifecycle → fsm) and the import
//     names none: imports it as ALIAS when one is given; else renames the
//     file's references (lifecycle.Observer → fsm.Observer), unless the
//     new name is taken in the file, where it imports it under the old
//     name instead;
//   - renames the package clause (and "Package OLD" in its doc comment)
//     of the files now in NEW;
//   - imports github.com/looplab/fsm as looplab, so that kiln's package
//     fsm and looplab's read apart.
//
// A file is written only when it changed, so a second run changes
// nothing.
package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const module = "github.com/kiln-build/kiln"

type move struct {
	old, new string // module-relative directories
	alias    string // the name to import NEW as when its name differs
}

const looplabPath = "github.com/looplab/fsm"

func main() {
	var moves []move
	for _, a := range os.Args[1:] {
		old, rest, ok := strings.Cut(a, "=")
		if !ok {
			fatalf("argument %q: want OLD=NEW[@ALIAS]", a)
		}
		nw, alias, _ := strings.Cut(rest, "@")
		moves = append(moves, move{old: old, new: nw, alias: alias})
	}
	// The longest OLD first, so that a/b is matched before a.
	sort.Slice(moves, func(i, j int) bool { return len(moves[i].old) > len(moves[j].old) })
	changed := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != "." && (n == "testdata" || n == "node_modules" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		c, err := rewrite(p, moves)
		if err != nil {
			return fmt.Errorf("rewriting %s: %w", p, err)
		}
		if c {
			changed++
		}
		return nil
	})
	if err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("restructure.go: %d Go files rewritten\n", changed)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "restructure.go: "+format+"\n", args...)
	os.Exit(1)
}

func rewrite(file string, moves []move) (bool, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments)
	if err != nil {
		return false, err
	}
	dir := filepath.ToSlash(filepath.Dir(file))

	// The package clause of a file now in a renamed package.
	for _, m := range moves {
		oldName, newName := path.Base(m.old), path.Base(m.new)
		if dir != m.new || oldName == newName {
			continue
		}
		switch f.Name.Name {
		case oldName:
			f.Name.Name = newName
		case oldName + "_test":
			f.Name.Name = newName + "_test"
		}
		if f.Doc != nil {
			for _, c := range f.Doc.List {
				c.Text = strings.Replace(c.Text, "Package "+oldName+" ", "Package "+newName+" ", 1)
			}
		}
	}

	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return false, err
		}
		if p == looplabPath && spec.Name == nil {
			rename(f, "fsm", "looplab")
			spec.Name = name(spec, "looplab")
			continue
		}
		for _, m := range moves {
			oldPath := module + "/" + m.old
			if p != oldPath && !strings.HasPrefix(p, oldPath+"/") {
				continue
			}
			spec.Path.Value = strconv.Quote(module + "/" + m.new + strings.TrimPrefix(p, oldPath))
			oldName, newName := path.Base(m.old), path.Base(m.new)
			if p != oldPath || oldName == newName || spec.Name != nil {
				break
			}
			switch {
			case m.alias != "":
				spec.Name = name(spec, m.alias)
				if m.alias != oldName {
					rename(f, oldName, m.alias)
				}
			case taken(f, spec, newName):
				spec.Name = name(spec, oldName)
			default:
				rename(f, oldName, newName)
			}
			break
		}
	}

	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		return false, err
	}
	if bytes.Equal(buf.Bytes(), src) {
		return false, nil
	}
	return true, os.WriteFile(file, buf.Bytes(), 0o644)
}

// name returns an import name for spec, placed where its path is so that
// the import keeps its line and its group.
func name(spec *ast.ImportSpec, n string) *ast.Ident {
	return &ast.Ident{NamePos: spec.Path.Pos(), Name: n}
}

// rename renames the package qualifier old to new in f's selector
// expressions (old.X), where old names no declaration of the file.
func rename(f *ast.File, old, new string) {
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == old && id.Obj == nil {
				id.Name = new
			}
		}
		return true
	})
}

// taken reports whether name is used in f other than as a field or
// method name, or is the name of another of its imports.
func taken(f *ast.File, self *ast.ImportSpec, name string) bool {
	for _, spec := range f.Imports {
		if spec == self {
			continue
		}
		p, _ := strconv.Unquote(spec.Path.Value)
		if spec.Name != nil && spec.Name.Name == name || spec.Name == nil && path.Base(p) == name {
			return true
		}
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			ast.Inspect(sel.X, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && id.Name == name {
					found = true
				}
				return !found
			})
			return false
		}
		if id, ok := n.(*ast.Ident); ok && id.Name == name && n != f.Name {
			found = true
		}
		return !found
	})
	return found
}
