package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/manifest/module"
)

// modules opens the module cache under --root.
func (a *app) modules() (*module.Cache, error) {
	abs, err := filepath.Abs(a.root)
	if err != nil {
		return nil, err
	}
	a.root = abs
	rc, err := a.registry()
	if err != nil {
		return nil, err
	}
	return module.Open(a.root, rc), nil
}

// appModules resolves the oci:// sources of use: steps through the
// module cache under --root, opened when a manifest first needs it.
type appModules struct {
	a      *app
	pins   map[string]string // kiln.lock's modules, for kiln build --locked
	locked bool
}

func (m *appModules) ResolveModule(ctx context.Context, source string) (manifest.ResolvedModule, error) {
	c, err := m.a.modules()
	if err != nil {
		return manifest.ResolvedModule{}, err
	}
	r := &module.Resolver{Cache: c, Pins: m.pins, Locked: m.locked}
	return r.ResolveModule(ctx, source)
}

func newModuleCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "module",
		Short: "Publish, fetch, list and describe build modules",
		Long: `A module is a reusable piece of a manifest: a YAML file, or a directory holding
module.yml and the files it copies, whose first document declares parameters
and whose second holds steps (and tests, env, toolbox). A manifest uses it as a
step: - use: ./modules/user (or oci://REGISTRY/REPO:TAG) with: {name: app}.`,
	}
	c.AddCommand(newModulePushCommand(a), newModulePullCommand(a), newModuleLsCommand(a), newModuleDocCommand(a))
	return c
}

func newModulePushCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "push DIR REGISTRY/REPO:TAG",
		Short: "Publish a module directory to a registry as an OCI artifact",
		Long: `Push checks that DIR holds a module (DIR/module.yml and its parameters) and
publishes the directory, with every file in it, as an OCI artifact of type
` + module.ArtifactType + `. It prints the digest to use it by:
use: oci://REGISTRY/REPO@DIGEST.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rc, err := a.registry()
			if err != nil {
				return err
			}
			ref, err := module.Reference(rc, args[1])
			if err != nil {
				return err
			}
			d, err := module.Push(cmd.Context(), rc, args[0], ref)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "pushed %s\n", module.Source(ref))
			fmt.Fprintln(a.stdout, d)
			return nil
		},
	}
}

func newModulePullCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "pull [oci://]REGISTRY/REPO:TAG|@DIGEST",
		Short: "Fetch a module into the local module cache",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.modules()
			if err != nil {
				return err
			}
			e, err := c.Pull(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, e.Digest)
			return nil
		},
	}
}

func newModuleLsCommand(a *app) *cobra.Command {
	var jsonOut bool
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the modules in the local module cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.modules()
			if err != nil {
				return err
			}
			es, err := c.List()
			if err != nil {
				return err
			}
			if jsonOut {
				return json.NewEncoder(a.stdout).Encode(es)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(w, "NAME\tREFERENCE\tDIGEST\tSIZE\tPULLED")
			for _, e := range es {
				for _, r := range e.Refs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.Config.Name, r, e.Digest, humanSize(e.Size), e.Pulled.Format(time.RFC3339))
				}
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print the entries as JSON")
	return c
}

func newModuleDocCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doc SOURCE",
		Short: "Print a module's parameters, with their types, defaults and descriptions",
		Long: `Doc describes the module SOURCE names: a path (a YAML file, or a directory
holding module.yml) or oci://REGISTRY/REPO:TAG, which is pulled first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			if manifest.IsRegistrySource(file) {
				c, err := a.modules()
				if err != nil {
					return err
				}
				e, err := c.Pull(cmd.Context(), file)
				if err != nil {
					return err
				}
				file = filepath.Join(e.Dir, manifest.ModuleFile)
			} else if fi, err := os.Stat(file); err == nil && fi.IsDir() {
				file = filepath.Join(file, manifest.ModuleFile)
			}
			info, err := manifest.ReadModule(file)
			if err != nil {
				return err
			}
			return writeModuleDoc(a, args[0], info)
		},
	}
}

// writeModuleDoc prints info: the module, its parameters, and a use: step.
func writeModuleDoc(a *app, source string, info *manifest.ModuleInfo) error {
	fmt.Fprintf(a.stdout, "module %s", info.Name)
	if info.Description != "" {
		fmt.Fprintf(a.stdout, ": %s", info.Description)
	}
	fmt.Fprintf(a.stdout, "\n\n")
	var with []string
	if len(info.Params) == 0 {
		fmt.Fprintln(a.stdout, "no parameters")
	} else {
		w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PARAMETER\tTYPE\tDEFAULT\tDESCRIPTION")
		for _, p := range info.Params {
			def := "-"
			switch {
			case p.Required:
				def = "(required)"
				with = append(with, p.Name+": …")
			case p.Default != nil:
				b, _ := json.Marshal(p.Default)
				def = string(b)
			}
			desc := p.Description
			if len(p.Enum) > 0 {
				vals := make([]string, len(p.Enum))
				for i, e := range p.Enum {
					vals[i] = fmt.Sprint(e)
				}
				desc = strings.TrimSpace(desc + " (one of " + strings.Join(vals, ", ") + ")")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Type, def, desc)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stdout, "\nuse:\n  - use: %s\n", source)
	if len(with) > 0 {
		fmt.Fprintf(a.stdout, "    with: {%s}\n", strings.Join(with, ", "))
	}
	return nil
}
