package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/registry"
	"github.com/kiln-build/kiln/image/store"
)

// inspection is what kiln inspect shows of an image.
type inspection struct {
	Name         string            `json:"name"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	OS           string            `json:"os"`
	Architecture string            `json:"architecture"`
	Variant      string            `json:"variant,omitempty"`
	Created      time.Time         `json:"created"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	User         string            `json:"user,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Layers       []inspectedLayer  `json:"layers"`
	History      []v1.History      `json:"history,omitempty"`
}

type inspectedLayer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// indexInspection is what kiln inspect shows of an image index.
type indexInspection struct {
	Name      string            `json:"name"`
	Digest    string            `json:"digest"`
	MediaType string            `json:"mediaType"`
	Manifests []indexedManifest `json:"manifests"`
}

type indexedManifest struct {
	Platform  string `json:"platform"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

func newInspectCommand(a *app) *cobra.Command {
	var format, plat string
	c := &cobra.Command{
		Use:   "inspect IMAGE|REF",
		Short: "Show an image's manifest, config, layers and history",
		Long: `Inspect shows an image of the local store (a name, a digest, or
oci-layout:DIR[:TAG], docker-archive:FILE[:NAME:TAG]) or, when the store
has no such image and the name has a registry host, the image in that
registry (fetching only its manifest and config). --format json prints one
JSON object. An image index (several platforms) is shown as its digest and
the platform, digest and size of each image in it; --platform OS/ARCH shows
that platform's image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if format != "text" && format != "json" {
				return fmt.Errorf("unknown format %q: want text or json", format)
			}
			var out interface{ writeText(io.Writer) error }
			var err error
			if plat != "" {
				out, err = a.inspectPlatform(ctx, args[0], plat)
			} else {
				out, err = a.inspectRef(ctx, args[0])
			}
			if err != nil {
				return fmt.Errorf("inspecting %s: %w", args[0], err)
			}
			if format == "json" {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			return out.writeText(a.stdout)
		},
	}
	c.Flags().StringVar(&format, "format", "text", "output format: text or json")
	c.Flags().StringVar(&plat, "platform", "", "of an image index, show the image of this platform (os/arch[/variant])")
	return c
}

// inspectRef is what kiln inspect shows of ref: the store's image or
// index, else the registry's.
func (a *app) inspectRef(ctx context.Context, ref string) (interface{ writeText(io.Writer) error }, error) {
	s, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	if !store.IsTransport(ref) {
		idx, ok, err := s.Index(ctx, ref)
		if ok {
			return inspectIndex(ref, idx)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	img, err := s.Resolve(ctx, ref)
	if errors.Is(err, store.ErrNotFound) && registry.HasHost(ref) {
		rc, rerr := a.registry()
		if rerr != nil {
			return nil, rerr
		}
		r, rerr := rc.Reference(ref)
		if rerr != nil {
			return nil, rerr
		}
		d, ms, rerr := rc.Manifests(ctx, r)
		if rerr != nil {
			return nil, rerr
		}
		if d.MediaType.IsIndex() {
			return indexOf(ref, *d, ms), nil
		}
		img, err = rc.Image(ctx, r)
	}
	if err != nil {
		return nil, err
	}
	return inspect(ref, img)
}

// inspectPlatform is what kiln inspect --platform p shows of ref: its
// image for p.
func (a *app) inspectPlatform(ctx context.Context, ref, p string) (*inspection, error) {
	pl, err := platform.Parse(p)
	if err != nil {
		return nil, badInput(fmt.Errorf("--platform: %w", err))
	}
	s, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	img, err := a.resolveBaseFor(ctx, s, ref, pl)
	if err != nil {
		return nil, err
	}
	return inspect(ref, img)
}

// inspectIndex is what kiln inspect shows of idx, which ref names.
func inspectIndex(ref string, idx v1.ImageIndex) (*indexInspection, error) {
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	size, err := idx.Size()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	return indexOf(ref, v1.Descriptor{Digest: d, MediaType: mt, Size: size}, im.Manifests), nil
}

// indexOf is the inspection of the index d, of manifests ms.
func indexOf(ref string, d v1.Descriptor, ms []v1.Descriptor) *indexInspection {
	in := &indexInspection{Name: ref, Digest: d.Digest.String(), MediaType: string(d.MediaType), Manifests: []indexedManifest{}}
	for _, m := range ms {
		p := "unknown"
		if m.Platform != nil {
			p = platform.FromOCI(m.Platform.OS, m.Platform.Architecture, m.Platform.Variant).String()
		}
		in.Manifests = append(in.Manifests, indexedManifest{Platform: p, Digest: m.Digest.String(), MediaType: string(m.MediaType), Size: m.Size})
	}
	return in
}

// writeText writes in as aligned, readable text.
func (in *indexInspection) writeText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", in.Name)
	fmt.Fprintf(w, "Digest:\t%s\n", in.Digest)
	fmt.Fprintf(w, "Media type:\t%s\n", in.MediaType)
	fmt.Fprintf(w, "Platforms:\t%d (kiln inspect --platform OS/ARCH %s shows one)\n", len(in.Manifests), in.Name)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nManifests:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  PLATFORM\tDIGEST\tSIZE\tMEDIA TYPE")
	for _, m := range in.Manifests {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", m.Platform, m.Digest, humanSize(m.Size), m.MediaType)
	}
	return w.Flush()
}

// inspect reads what kiln inspect shows of img (without reading layers).
func inspect(ref string, img v1.Image) (*inspection, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	in := &inspection{
		Name: ref, Digest: d.String(), MediaType: string(mt),
		OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant,
		Created:    cf.Created.UTC(),
		Env:        cf.Config.Env,
		Entrypoint: cf.Config.Entrypoint,
		Cmd:        cf.Config.Cmd,
		WorkingDir: cf.Config.WorkingDir,
		User:       cf.Config.User,
		Labels:     cf.Config.Labels,
		History:    cf.History,
		Layers:     []inspectedLayer{},
	}
	in.ExposedPorts = slices.Sorted(maps.Keys(cf.Config.ExposedPorts))
	for i, l := range m.Layers {
		il := inspectedLayer{Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size}
		if i < len(cf.RootFS.DiffIDs) {
			il.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		in.Layers = append(in.Layers, il)
	}
	return in, nil
}

// writeText writes in as aligned, readable text.
func (in *inspection) writeText(out io.Writer) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	platform := in.OS + "/" + in.Architecture
	if in.Variant != "" {
		platform += "/" + in.Variant
	}
	var total int64
	for _, l := range in.Layers {
		total += l.Size
	}
	fmt.Fprintf(w, "Name:\t%s\n", in.Name)
	fmt.Fprintf(w, "Digest:\t%s\n", in.Digest)
	fmt.Fprintf(w, "Media type:\t%s\n", in.MediaType)
	fmt.Fprintf(w, "Platform:\t%s\n", platform)
	fmt.Fprintf(w, "Created:\t%s\n", in.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "Size:\t%s in %d layers\n", humanSize(total), len(in.Layers))
	fmt.Fprintf(w, "Entrypoint:\t%s\n", quoteArgs(in.Entrypoint))
	fmt.Fprintf(w, "Cmd:\t%s\n", quoteArgs(in.Cmd))
	fmt.Fprintf(w, "Workdir:\t%s\n", in.WorkingDir)
	fmt.Fprintf(w, "User:\t%s\n", in.User)
	fmt.Fprintf(w, "Exposed ports:\t%s\n", strings.Join(in.ExposedPorts, " "))
	fmt.Fprintf(w, "Env:\t%s\n", strings.Join(in.Env, "\n\t"))
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(in.Labels)) {
		labels = append(labels, k+"="+in.Labels[k])
	}
	fmt.Fprintf(w, "Labels:\t%s\n", strings.Join(labels, "\n\t"))
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nLayers:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  #\tDIGEST\tSIZE\tMEDIA TYPE")
	for i, l := range in.Layers {
		fmt.Fprintf(w, "  %d\t%s\t%s\t%s\n", i, l.Digest, humanSize(l.Size), l.MediaType)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	if len(in.History) > 0 {
		fmt.Fprintln(out, "\nHistory:")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  CREATED\tCREATED BY\tCOMMENT")
		for _, h := range in.History {
			by := strings.Join(strings.Fields(h.CreatedBy), " ")
			if h.EmptyLayer {
				by += " (no layer)"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", h.Created.UTC().Format(time.RFC3339), by, h.Comment)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// quoteArgs prints an argument list as a JSON array, or nothing.
func quoteArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	b, err := json.Marshal(args)
	if err != nil {
		return strings.Join(args, " ")
	}
	return string(b)
}
