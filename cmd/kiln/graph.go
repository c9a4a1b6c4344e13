package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGraphCommand(a *app) *cobra.Command {
	var f manifestFlags
	var format string
	var afterBuild bool
	var plats string
	c := &cobra.Command{
		Use:   "graph [flags] [CONTEXT]",
		Short: "Print the build graph of a manifest (DOT, SVG, Mermaid or JSON), or how its last build went",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if afterBuild || format == "svg" {
				return a.drawBuild(cmd.Context(), f, args, format, afterBuild, plats)
			}
			g, err := f.loadGraph(cmd.Context(), args, plats)
			if err != nil {
				return err
			}
			var out []byte
			switch format {
			case "dot":
				out, err = g.DOT()
			case "mermaid":
				out = []byte(g.Mermaid())
			case "json":
				out, err = g.JSON()
			default:
				return fmt.Errorf("--format %q: use dot, svg, mermaid or json", format)
			}
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}
	f.add(c)
	f.modules = &appModules{a: a}
	c.Flags().StringVar(&format, "format", "dot", "dot, svg (through Graphviz's dot), mermaid or json")
	c.Flags().StringVar(&plats, "platform", "", "draw the graphs of a build for these platforms (os/arch, comma-separated; default: the manifest's platforms:), side by side, each node named by its platform")
	c.Flags().BoolVar(&afterBuild, "after-build", false, "colour the nodes by how the last build of the manifest went (cached, ran, failed, not run), with durations")
	return c
}
