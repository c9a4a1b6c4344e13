package manifest

import "testing"

func TestIsDockerfileAndStartsLikeDockerfile(t *testing.T) {
	names := []struct {
		name string
		want bool
	}{
		{"Dockerfile", true}, {"Dockerfile.dev", true}, {"Containerfile", true}, {"Containerfile.ci", true},
		{"app.Dockerfile", true}, {"app.dockerfile", true}, {"x.Containerfile", true},
		{"kiln.yml", false}, {"Dockerfile.yml", false}, {"app.yaml", false}, {"build.txt", false},
	}
	for _, n := range names {
		if got := IsDockerfile("/ctx/" + n.name); got != n.want {
			t.Errorf("IsDockerfile(%q) = %v, want %v", n.name, got, n.want)
		}
	}
	contents := []struct {
		data string
		want bool
	}{
		{"FROM busybox\n", true},
		{"# syntax=docker/dockerfile:1\n\n  # note\nARG V=1\nFROM x\n", true},
		{"from\tbusybox\n", true},
		{"from: busybox\nsteps: []\n", false},
		{"---\nvars: {}\n---\nfrom: busybox\n", false},
		{"{% if x %}\nfrom: a\n{% endif %}\n", false},
		{"FROM\n", false},
		{"", false},
	}
	for _, c := range contents {
		if got := StartsLikeDockerfile([]byte(c.data)); got != c.want {
			t.Errorf("StartsLikeDockerfile(%q) = %v, want %v", c.data, got, c.want)
		}
	}
}
