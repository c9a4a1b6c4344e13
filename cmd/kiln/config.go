package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/kiln-build/kiln/engine/idrange"
	"github.com/kiln-build/kiln/internal/rootless"
)

// configName is the file, in the root directory, of settings that apply
// to every build on that root; a flag given on the command line wins.
const configName = "config.yml"

// rootConfig is what the root's config.yml sets.
type rootConfig struct {
	// UserNS is the default of kiln build --userns.
	UserNS string
}

// readRootConfig reads root's config.yml; a root without one has the
// defaults. A setting kiln does not know, or a bad value, is an error
// naming the file, line and column.
func readRootConfig(root string) (rootConfig, error) {
	var c rootConfig
	p := filepath.Join(root, configName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("reading the root's settings: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return c, fmt.Errorf("%s: %w", p, err)
	}
	if len(doc.Content) == 0 {
		return c, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return c, fmt.Errorf("%s:%d:%d: want a mapping of settings (userns: auto)", p, m.Line, m.Column)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch k.Value {
		case "userns":
			if _, err := parseUserNS(v.Value); err != nil || v.Kind != yaml.ScalarNode {
				return c, fmt.Errorf("%s:%d:%d: userns: want host or auto", p, v.Line, v.Column)
			}
			c.UserNS = v.Value
		default:
			return c, fmt.Errorf("%s:%d:%d: unknown setting %q (kiln knows: userns)", p, k.Line, k.Column, k.Value)
		}
	}
	return c, nil
}

// parseUserNS checks a --userns value: host (steps in kiln's own user
// namespace, root as root) or auto (each in one of its own, on a range
// allocated for it); "" is host.
func parseUserNS(s string) (bool, error) {
	switch s {
	case "", "host":
		return false, nil
	case "auto":
		return true, nil
	}
	return false, fmt.Errorf("unknown --userns %q: use host or auto", s)
}

// setUserNS decides, from the --userns flag (or, without it, the root's
// config.yml), whether the build's steps run in user namespaces of their
// own, and if so makes the allocator of their ranges for a.engine.
func (a *app) setUserNS(flag string) error {
	if flag == "" {
		c, err := readRootConfig(a.root)
		if err != nil {
			return err
		}
		flag = c.UserNS
	}
	auto, err := parseUserNS(flag)
	if err != nil || !auto {
		return err
	}
	if os.Geteuid() != 0 || rootless.Active() {
		return errors.New("--userns auto is for a build run as root: an unprivileged kiln's steps are in a user namespace already")
	}
	a.userns, err = idrange.New()
	return err
}
