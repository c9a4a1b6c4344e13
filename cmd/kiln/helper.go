package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/manifest"
	"github.com/kiln-build/kiln/toolbox"
)

// This file holds the commands kiln answers when it runs as
// /.kiln/bin/kiln inside a build or test container (toolbox.InContainer):
// render, wait-for and checksum. They need nothing from the container's
// filesystem but /.kiln, so they work in a scratch image.

// runHelper runs a helper command line and returns the exit status.
func runHelper(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "kiln's helpers inside build containers: render, wait-for, checksum",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newHelperRender(), newHelperWaitFor(), newHelperChecksum())
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "kiln: %v\n", err)
		return 1
	}
	return 0
}

func newHelperRender() *cobra.Command {
	return &cobra.Command{
		Use:   "render SRC DST",
		Short: "Render the template SRC with the build's values (" + toolbox.Values + ") into DST (- for stdout)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			values, err := toolbox.ReadValues(toolbox.Values)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: the values are only given to the steps whose command mentions kiln (they are part of those steps' cache keys): name /.kiln/bin/kiln in the step that runs this", err)
			}
			if err != nil {
				return err
			}
			return renderTemplate(values, args[0], args[1], cmd.OutOrStdout())
		},
	}
}

// renderTemplate renders src with values into dst, or w when dst is "-".
// Templates may include files of src's directory tree only.
func renderTemplate(values map[string]any, src, dst string, w io.Writer) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	out, err := manifest.RenderFile(&manifest.Build{Context: filepath.Dir(abs), Values: values}, filepath.Base(abs))
	if err != nil {
		return err
	}
	if dst == "-" {
		_, err := w.Write(out)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("rendering %s: %w", src, err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return fmt.Errorf("rendering %s: %w", src, err)
	}
	return nil
}

func newHelperWaitFor() *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait-for HOST:PORT",
		Short: "Wait until HOST:PORT accepts a TCP connection",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return waitFor(cmd.Context(), args[0], timeout)
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	return c
}

// waitFor dials addr until it answers or timeout passes.
func waitFor(ctx context.Context, addr string, timeout time.Duration) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("wait-for %q: want HOST:PORT: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait-for %s: no connection within %s: %w", addr, timeout, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func newHelperChecksum() *cobra.Command {
	return &cobra.Command{
		Use:   "checksum FILE SHA256",
		Short: "Check that FILE's sha256 is SHA256 (hex, or sha256:hex)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return checksum(args[0], args[1])
		},
	}
}

func checksum(file, want string) error {
	want = strings.ToLower(strings.TrimPrefix(want, "sha256:"))
	if len(want) != 64 {
		return fmt.Errorf("checksum of %s: %q is not a sha256 (64 hex digits)", file, want)
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("checksum of %s: %w", file, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return errors.New("checksum of " + file + ": sha256 is " + got + ", want " + want)
	}
	return nil
}

// kilnBinary is the binary mounted at /.kiln/bin/kiln: the one given
// (kiln build --kiln-binary), else this one. Release builds of kiln are
// static (CGO_ENABLED=0), which the helpers need in a scratch image.
func kilnBinary(given string) (string, error) {
	if given != "" {
		return filepath.Abs(given)
	}
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding kiln's own binary for /.kiln/bin/kiln: %w", err)
	}
	return p, nil
}
