package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock returns the command lines of the sh block that follows the
// line of README.md holding marker.
func readmeBlock(t *testing.T, marker string) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), marker)
	if !ok {
		t.Fatalf("README.md has no %q", marker)
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("README.md: no sh block after %q", marker)
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if cmd, _, _ := strings.Cut(l, " #"); strings.TrimSpace(cmd) != "" {
			lines = append(lines, strings.TrimSpace(cmd))
		}
	}
	return lines
}

// runReadmeLine runs one README command line, kiln ARGS [< FILE], in
// this process and returns its result.
func runReadmeLine(t *testing.T, root, line string) result {
	t.Helper()
	words := strings.Fields(line)
	if len(words) == 0 || words[0] != "kiln" {
		t.Fatalf("README line %q: not a kiln command", line)
	}
	args, stdin := words[1:], ""
	if i := len(args) - 2; i >= 0 && args[i] == "<" {
		args, stdin = args[:i], args[i+1]
	}
	if stdin == "" {
		return kiln(t, root, nil, args...)
	}
	f, err := os.Open(stdin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return kiln(t, root, f, args...)
}

// copyExamples copies the repository's examples into a new directory,
// makes it the working directory, and returns it: README lines run there
// as they would in a clone, writing nothing into the repository.
func copyExamples(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return dir
}

// TestReadmeDockerHabits runs the README's block of docker-habit command
// lines exactly as written.
func TestReadmeDockerHabits(t *testing.T) {
	root := buildRoot(t)
	lines := readmeBlock(t, "TestReadmeDockerHabits")
	dir := copyExamples(t)
	for _, line := range lines {
		if r := runReadmeLine(t, root, line); r.code != 0 {
			t.Errorf("%s: exit %d\n%s", line, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "rootfs", "greeting")); err != nil {
		t.Errorf("-o type=local wrote no filesystem: %v", err)
	}
}

// TestReadmeDocumentsErrorKeys: the manifest keys kiln's errors tell
// the user to write are documented in the README.
func TestReadmeDocumentsErrorKeys(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	root := newRoot(t)
	dir := writeContext(t, map[string]string{"kiln.yml": "from: busybox\nsteps:\n  - run: echo {{ env.NOPE }}\n"})
	r := kiln(t, root, nil, "graph", dir)
	if !strings.Contains(r.stderr, "env_vars:") {
		t.Fatalf("the error of an undeclared env.NOPE no longer names env_vars: (%q): update this test", r.stderr)
	}
	if !strings.Contains(string(data), "`env_vars: [") {
		t.Errorf("an error names env_vars: (%q), which the README does not document", r.stderr)
	}
}

// TestReadmeLinksInRepository: the README and docs/ link only to files a
// clone of the repository has, and never point outside it.
func TestReadmeLinksInRepository(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	linkRE := regexp.MustCompile(`\]\(([^)#\s]+)[^)]*\)`)
	for _, file := range append(docs, "../../README.md") {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "../shared") {
			t.Errorf("%s points at ../shared, which a clone does not have", file)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(filepath.Dir(file), target)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to %s: %v", file, target, err)
			}
		}
	}
}
