package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/manifest"
)

func newRenderCommand(a *app) *cobra.Command {
	var f manifestFlags
	var schema bool
	c := &cobra.Command{
		Use:   "render [flags] [CONTEXT]",
		Short: "Print the rendered manifest, or the JSON Schema of the format",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if schema {
				_, err := a.stdout.Write(manifest.Schema())
				return err
			}
			path, opts, err := f.options(args)
			if err != nil {
				return err
			}
			if fe, err := manifest.Frontend(path, opts); err != nil || fe == "dockerfile" {
				if err == nil {
					err = fmt.Errorf("%s is a Dockerfile: nothing to render (a Dockerfile is no template); kiln graph -f %s shows the steps it builds", path, path)
				}
				return badInput(err)
			}
			out, err := manifest.Render(cmd.Context(), path, opts)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	c.Flags().BoolVar(&schema, "schema", false, "print the JSON Schema of the manifest format")
	return c
}
