package manifest

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The Dockerfile frontend's part of issue 16 (cmd/kiln's
// dockerfile_semantics_test.go builds each end to end, with the BuildKit
// source that sets it).

func parseDF(t *testing.T, df string, opts Options) (*Build, error) {
	t.Helper()
	return parseDockerfile(context.Background(), "Dockerfile", []byte(df), opts)
}

func TestDockerfileSemantics(t *testing.T) {
	for _, tc := range []struct {
		name, df, target string
		wantErr          string // "" for success
		check            func(t *testing.T, b *Build)
	}{
		{name: "from-var-global", df: "ARG S=a\nFROM busybox AS a\nFROM busybox\nCOPY --from=$S /x /x\n",
			wantErr: "Dockerfile:4: COPY --from=$S: variable expansion is not supported for --from"},
		{name: "from-var-local", df: "FROM busybox AS a\nFROM busybox\nARG S=a\nCOPY --from=${S} /x /x\n",
			wantErr: "Dockerfile:4: COPY --from=${S}: variable expansion is not supported for --from"},
		{name: "from-var-unneeded-stage", df: "FROM busybox AS a\nFROM busybox AS b\nCOPY --from=$S /x /x\nFROM a\n",
			wantErr: "Dockerfile:3: COPY --from=$S: variable expansion"},
		{name: "target-skips-others", target: "good",
			df: "FROM busybox AS good\nFROM busybox AS bad\nARG X\nRUN echo ${X:?unset}\nCOPY a b /notadir\nENV Y=${Z:?}\n",
			check: func(t *testing.T, b *Build) {
				if len(b.Stages) != 1 || b.Stages[0].Name != "good" {
					t.Errorf("stages %v, want only good", stageNames(b))
				}
			}},
		{name: "unneeded-from-still-expanded", target: "good", df: "FROM busybox AS good\nFROM ${NOPE:?must_be_set}\n",
			wantErr: "must_be_set"},
		{name: "maintainer-and-start-interval", df: "FROM scratch\nMAINTAINER Jane\nHEALTHCHECK --start-interval=2s CMD true\n",
			check: func(t *testing.T, b *Build) {
				var author string
				var start time.Duration
				for _, s := range b.Stages[0].Steps {
					if s.Config != nil && s.Config.Author != "" {
						author = s.Config.Author
					}
					if s.Config != nil && s.Config.Healthcheck != nil {
						start = s.Config.Healthcheck.StartInterval
					}
				}
				if author != "Jane" || start != 2*time.Second || len(b.Warnings) != 0 {
					t.Errorf("author %q start interval %v warnings %q, want Jane, 2s and none", author, start, b.Warnings)
				}
			}},
		{name: "copy-flags", df: "FROM scratch\nCOPY --chmod=4755 a /a\nCOPY b /b\n",
			check: func(t *testing.T, b *Build) {
				var cs []*Copy
				for _, s := range b.Stages[0].Steps {
					if s.Copy != nil {
						cs = append(cs, s.Copy)
					}
				}
				if len(cs) != 2 {
					t.Fatalf("%d copies, want 2", len(cs))
				}
				c1, c2 := cs[0], cs[1]
				if c1.Mode != "4755" || !c1.ModeDirs || !c1.AllowEmptyWildcard || c2.ModeDirs || !c2.AllowEmptyWildcard {
					t.Errorf("copies %+v and %+v: want --chmod's ModeDirs on the first only, AllowEmptyWildcard on both", c1, c2)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := parseDF(t, tc.df, Options{Target: tc.target})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, b)
		})
	}
}

func stageNames(b *Build) []string {
	var out []string
	for _, s := range b.Stages {
		out = append(out, s.Name)
	}
	return out
}
