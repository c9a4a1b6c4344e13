package dag

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/manifest"
)

// TestDockerfileCorpus loads and compiles every Dockerfile of the shared
// conformance corpus (KILN_CORPUS, else ../shared/corpus from the
// repository's root; its files are third-party Dockerfiles under their
// own licences, so the repository does not hold them): each
// must compile, or fail with a *manifest.Error naming an instruction and
// its line; each invalid one must fail naming its line (or, with no
// instruction at all, saying so).
func TestDockerfileCorpus(t *testing.T) {
	root := os.Getenv("KILN_CORPUS")
	if root == "" {
		root = filepath.Join("..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(root); err != nil {
		t.Skipf("the Dockerfile corpus (third-party files the repository does not hold) is absent: set KILN_CORPUS to its directory: %v", err)
	}
	instrRE := regexp.MustCompile(`:\d+: [A-Z]+`)
	counts := map[string]int{}
	for _, sub := range []string{"dockerfiles", "dockerfiles-invalid"} {
		des, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			p := filepath.Join(root, sub, de.Name(), "Dockerfile")
			t.Run(sub+"/"+de.Name(), func(t *testing.T) {
				b, err := manifest.LoadDockerfile(context.Background(), p, manifest.Options{Getenv: func(string) string { return "" }})
				if err == nil {
					_, err = Compile(b)
				}
				if err == nil {
					counts[sub+" compiled"]++
					if sub == "dockerfiles-invalid" {
						t.Errorf("an invalid Dockerfile compiled")
					}
					return
				}
				counts[sub+" rejected"]++
				t.Logf("%v", err)
				var me *manifest.Error
				switch {
				case !errors.As(err, &me):
					t.Errorf("the error is a %T, want a *manifest.Error: %v", err, err)
				case me.Pos.Line == 0 && !strings.Contains(err.Error(), "no instructions"):
					t.Errorf("the error names no line: %v", err)
				case sub == "dockerfiles" && !instrRE.MatchString(err.Error()):
					t.Errorf("the error names no instruction: %v", err)
				}
			})
		}
	}
	t.Logf("corpus: %d compiled, %d rejected naming an instruction and line; invalid: %d rejected, %d compiled",
		counts["dockerfiles compiled"], counts["dockerfiles rejected"], counts["dockerfiles-invalid rejected"], counts["dockerfiles-invalid compiled"])
}
