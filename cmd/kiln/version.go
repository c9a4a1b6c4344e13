package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// What make build sets with -ldflags -X main.version=… (and commit,
// buildDate); empty in a plain go build, where kiln version reads what
// the Go toolchain recorded instead (debug.ReadBuildInfo).
var (
	version   string
	commit    string
	buildDate string
)

// versionInfo is what kiln version prints.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	Built   string `json:"built"`
}

// readVersion is kiln's version: the -ldflags -X values when make build
// set them, else the module version, vcs.revision (with -dirty for
// vcs.modified) and vcs.time of the build info; "unknown" for what
// neither says.
func readVersion(bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: version, Commit: commit, Go: runtime.Version(), Built: buildDate}
	if bi != nil {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if v.Commit == "" && settings["vcs.revision"] != "" {
			v.Commit = settings["vcs.revision"]
			if settings["vcs.modified"] == "true" {
				v.Commit += "-dirty"
			}
		}
		if v.Built == "" && settings["vcs.time"] != "" {
			v.Built = "(commit time) " + settings["vcs.time"]
		}
	}
	for _, s := range []*string{&v.Version, &v.Commit, &v.Built} {
		if *s == "" {
			*s = "unknown"
		}
	}
	return v
}

func newVersionCommand(a *app) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, commit, Go version and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bi, _ := debug.ReadBuildInfo()
			v := readVersion(bi)
			switch format {
			case "json":
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			case "text":
				_, err := fmt.Fprintf(a.stdout, "kiln version %s\ncommit:  %s\ngo:      %s\nbuilt:   %s\nos/arch: %s/%s\n",
					v.Version, v.Commit, v.Go, v.Built, runtime.GOOS, runtime.GOARCH)
				return err
			}
			return badInput(fmt.Errorf("--format %q: use text or json", format))
		},
	}
	c.Flags().StringVar(&format, "format", "text", "text or json")
	return c
}
