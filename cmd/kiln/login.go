package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/image/registry"
)

func newLoginCommand(a *app) *cobra.Command {
	var user string
	var passwordStdin bool
	c := &cobra.Command{
		Use:   "login REGISTRY -u USER --password-stdin",
		Short: "Check credentials against a registry and save them",
		Long: `Login checks USER and the password read from stdin against REGISTRY
(GET /v2/ with them) and, if it accepts them, saves them where docker login
would: the credential helper the Docker config file names, else
"auths.REGISTRY.auth" in $DOCKER_CONFIG/config.json or ~/.docker/config.json
(created with mode 0600). push, pull and inspect use them. With --ca-file,
the CA is kept for REGISTRY too, in ~/.config/kiln/certs.d/REGISTRY/ca.crt
($XDG_CONFIG_HOME/kiln/certs.d), so later commands trust it without the
flag; kiln also reads Docker's and Podman's /etc/docker/certs.d and
/etc/containers/certs.d.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if user == "" {
				return errors.New("logging in: pass the user name with -u USER")
			}
			if !passwordStdin {
				return errors.New("logging in: pass the password on stdin with --password-stdin")
			}
			b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
			if err != nil {
				return fmt.Errorf("logging in: reading the password: %w", err)
			}
			password := strings.TrimRight(string(b), "\r\n")
			if password == "" {
				return errors.New("logging in: the password read from stdin is empty")
			}
			rc, err := a.registry()
			if err != nil {
				return err
			}
			reg, err := rc.Registry(args[0])
			if err != nil {
				return err
			}
			if err := rc.CheckLogin(ctx, reg, user, password); err != nil {
				return fmt.Errorf("logging in to %s: %w", reg.RegistryStr(), err)
			}
			path, err := registry.SaveLogin(reg, user, password)
			if err != nil {
				return fmt.Errorf("logging in to %s: %w", reg.RegistryStr(), err)
			}
			if _, err := fmt.Fprintf(a.stderr, "logged in to %s as %s (credentials in %s)\n", reg.RegistryStr(), user, path); err != nil {
				return err
			}
			if a.reg.caFile == "" {
				return nil
			}
			ca, err := registry.SaveCA(reg.RegistryStr(), a.reg.caFile)
			if err != nil {
				return fmt.Errorf("logging in to %s: %w", reg.RegistryStr(), err)
			}
			_, err = fmt.Fprintf(a.stderr, "trusting the CA of %s from %s from now on\n", reg.RegistryStr(), ca)
			return err
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "user `NAME`")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return c
}

func newLogoutCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove the credentials kiln login saved for a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rc, err := a.registry()
			if err != nil {
				return err
			}
			reg, err := rc.Registry(args[0])
			if err != nil {
				return err
			}
			path, err := registry.RemoveLogin(reg)
			if errors.Is(err, registry.ErrNotLoggedIn) {
				_, err = fmt.Fprintf(a.stderr, "not logged in to %s\n", reg.RegistryStr())
				return err
			}
			if err != nil {
				return fmt.Errorf("logging out of %s: %w", reg.RegistryStr(), err)
			}
			_, err = fmt.Fprintf(a.stderr, "removed the credentials for %s from %s\n", reg.RegistryStr(), path)
			return err
		},
	}
}

// registryCommands are the commands that talk to registries, besides push.
func registryCommands(a *app) []*cobra.Command {
	return []*cobra.Command{newPullCommand(a), newInspectCommand(a), newLoginCommand(a), newLogoutCommand(a)}
}
