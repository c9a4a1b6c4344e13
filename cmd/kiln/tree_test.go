package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The tree shows the design (docs/architecture.md): one folder per part
// of the design card, each part importing only parts below it.

const modulePath = "github.com/kiln-build/kiln"

// layers ranks the repository's top-level parts, lowest first: a package
// may import a package of another part only when that part's rank is
// lower. Parts of one rank (image and fsm; manifest, engine and cache;
// dag and toolbox) never import each other.
var layers = map[string]int{
	"internal": 0, // single-purpose helpers
	"image":    1, // image config, store, layers, registry client
	"fsm":      1, // a node's life
	"manifest": 2, // manifests, templates, Dockerfiles, modules, kiln.lock
	"engine":   2, // snapshots, containers, cgroups
	"cache":    2, // the build cache, local and shared
	"dag":      3, // the build graph
	"toolbox":  3, // /.kiln in every container
	"executor": 4, // runs the graph; the debuggers and reports that watch it
	"cmd":      5, // the CLI
}

// designCard is what the design names and the top level must show.
var designCard = []string{"cmd", "manifest", "dag", "fsm", "executor", "cache", "toolbox", "engine", "image", "testdata"}

type listedPackage struct {
	ImportPath                string
	Imports                   []string
	TestImports, XTestImports []string
}

// goList returns the module's packages as go list -json reads them.
func goList(t *testing.T) []listedPackage {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go" // where the Makefile and .ci/run find it
	}
	cmd := exec.Command(goCmd, "list", "-json", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("reading go list's output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed no package")
	}
	return pkgs
}

// part returns the top-level folder of a package of the module, and
// false for a package of another module.
func part(importPath string) (string, bool) {
	rel, ok := strings.CutPrefix(importPath, modulePath+"/")
	if !ok {
		return "", false
	}
	top, _, _ := strings.Cut(rel, "/")
	return top, true
}

// TestTreeLayers checks with go list that no package imports one of a
// part above its own (nor of another part of its rank): engine and image
// never import executor, manifest never imports engine, and so on.
// Test files count too.
func TestTreeLayers(t *testing.T) {
	for _, p := range goList(t) {
		from, _ := part(p.ImportPath)
		rank, ok := layers[from]
		if !ok {
			t.Errorf("%s: its folder %s/ is in no layer of the tree (add it to layers, or move it)", p.ImportPath, from)
			continue
		}
		imports := slices.Concat(p.Imports, p.TestImports, p.XTestImports)
		slices.Sort(imports)
		for _, imp := range slices.Compact(imports) {
			to, ok := part(imp)
			if !ok || to == from {
				continue
			}
			if r, ok := layers[to]; !ok {
				t.Errorf("%s imports %s, whose folder %s/ is in no layer of the tree", p.ImportPath, imp, to)
			} else if r >= rank {
				t.Errorf("%s (%s, layer %d) imports %s (%s, layer %d): a part imports only the parts below it", p.ImportPath, from, rank, imp, to, r)
			}
		}
	}
}

// TestTreeTopLevel checks that the top level shows the design card and
// stays small enough to read at a glance. What .gitignore keeps out of
// the repository at the top (bin/, which make build writes) is not part
// of the tree.
func TestTreeTopLevel(t *testing.T) {
	des, err := os.ReadDir(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ignored := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join("..", "..", ".gitignore")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(strings.TrimSuffix(strings.TrimSpace(l), "/"), "/"); ok && !strings.Contains(name, "/") {
				ignored[name] = true
			}
		}
	}
	var dirs []string
	for _, de := range des {
		if de.IsDir() && !strings.HasPrefix(de.Name(), ".") && !ignored[de.Name()] {
			dirs = append(dirs, de.Name())
		}
	}
	if len(dirs) > 14 {
		t.Errorf("the top level has %d folders, want at most 14: %v", len(dirs), dirs)
	}
	for _, name := range designCard {
		if !slices.Contains(dirs, name) {
			t.Errorf("the top level has no %s/, a part of the design card: %v", name, dirs)
		}
	}
}

// TestReadmePackageTable checks that the README's package table (the
// section "## Packages") names every package go list lists, and no other.
func TestReadmePackageTable(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Packages\n")
	if !ok {
		t.Fatal("README.md has no section ## Packages")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	inTable := map[string]bool{}
	cell := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1]
		for _, m := range cell.FindAllStringSubmatch(first, -1) {
			if inTable[m[1]] {
				t.Errorf("README.md's package table lists %s twice", m[1])
			}
			inTable[m[1]] = true
		}
	}
	listed := map[string]bool{}
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(p.ImportPath, modulePath+"/")
		listed[rel] = true
		if !inTable[rel] {
			t.Errorf("README.md's package table does not list %s", rel)
		}
	}
	var extra []string
	for name := range inTable {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		t.Errorf("README.md's package table lists %s, which go list ./... does not", name)
	}
}
