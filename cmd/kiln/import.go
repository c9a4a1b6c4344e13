package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/platform"
	"github.com/kiln-build/kiln/image/store"
)

func newImportCommand(a *app) *cobra.Command {
	var (
		tag                 string
		cfg                 v1.Config
		cmdFlag, entrypoint string
		platformFlag        string
	)
	c := &cobra.Command{
		Use:   "import ROOTFS_DIR|TARBALL -t NAME[:TAG]",
		Short: "Make a one-layer image from a directory or a tarball",
		Long: `Import makes a one-layer OCI image in the local store from a root filesystem
directory or a tarball (plain, gzip or zstd). The result is reproducible: every
timestamp is clamped to SOURCE_DATE_EPOCH (default 0) and entries are sorted, so
importing the same tree twice gives the same digest.

--platform P says the tree is P's (linux/arm64): the image's config names
P, and NAME becomes an image index holding it beside the images of other
platforms NAME held, so that builds for each platform find their base.`,
		Example: `  scripts/busybox-rootfs.sh /tmp/rootfs && kiln import /tmp/rootfs -t busybox --cmd /bin/sh`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if tag == "" {
				return fmt.Errorf("import needs a name: -t NAME[:TAG]")
			}
			created, err := sourceDateEpoch()
			if err != nil {
				return err
			}
			if cfg.Cmd, err = commandFlag("--cmd", cmdFlag); err != nil {
				return err
			}
			if cfg.Entrypoint, err = commandFlag("--entrypoint", entrypoint); err != nil {
				return err
			}
			if !hasEnv(cfg.Env, "PATH") {
				cfg.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cfg.Env...)
			}
			opts := store.ImportOptions{Created: created, Config: cfg}
			if platformFlag != "" {
				if opts.Platform, err = platform.Parse(platformFlag); err != nil {
					return badInput(fmt.Errorf("--platform: %w", err))
				}
			}
			s, err := a.store(ctx)
			if err != nil {
				return err
			}
			d, err := s.Import(ctx, args[0], tag, opts)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, d)
			return err
		},
	}
	f := c.Flags()
	f.StringVarP(&tag, "tag", "t", "", "name of the image, NAME[:TAG]")
	f.StringVar(&platformFlag, "platform", "", "the tree's platform, os/arch[/variant]: NAME becomes an index of it and NAME's images of other platforms")
	f.StringVar(&cmdFlag, "cmd", "", `default command: a JSON array ["/bin/sh","-c","…"] or a single program`)
	f.StringVar(&entrypoint, "entrypoint", "", "entrypoint: a JSON array or a single program")
	f.StringArrayVarP(&cfg.Env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringVarP(&cfg.WorkingDir, "workdir", "w", "", "working directory")
	f.StringVarP(&cfg.User, "user", "u", "", "user, as uid[:gid] or name[:group]")
	return c
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH; the default is the epoch.
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since the epoch", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// commandFlag reads a command given as a JSON array or a single word.
func commandFlag(name, s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "[") {
		var out []string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("%s %s: not a JSON array of strings: %w", name, s, err)
		}
		return out, nil
	}
	if strings.ContainsAny(s, " \t") {
		return nil, fmt.Errorf(`%s %q: give a JSON array, e.g. ["/bin/sh","-c","echo hi"]`, name, s)
	}
	return []string{s}, nil
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}
