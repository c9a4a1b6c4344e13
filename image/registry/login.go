package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// CheckLogin asks reg for its API root (GET /v2/) with user and password,
// through go-containerregistry's transport (so with a token exchange when
// the registry wants one), and returns an *Error unless it answers 200.
func (c *Client) CheckLogin(ctx context.Context, reg name.Registry, user, password string) error {
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	t, err := transport.NewWithContext(ctx, reg, auth, c.transport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return describe(reg.RegistryStr(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := t.RoundTrip(req)
	if err != nil {
		return describe(reg.RegistryStr(), err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return &Error{Registry: reg.RegistryStr(), Status: resp.StatusCode, Err: err, login: true}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// ConfigDir returns the directory of the Docker config file, as Docker and
// authn.DefaultKeychain find it: $DOCKER_CONFIG, else ~/.docker.
func ConfigDir() (string, error) {
	if d := os.Getenv(config.EnvOverrideConfigDir); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the docker config: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// authKey is the key of reg in the config file's "auths", as docker login
// writes it.
func authKey(reg name.Registry) string {
	if reg.RegistryStr() == name.DefaultRegistry {
		return authn.DefaultAuthKey
	}
	return reg.RegistryStr()
}

// loadConfig reads the Docker config file of ConfigDir, or an empty one.
func loadConfig() (*configfile.ConfigFile, error) {
	dir, err := ConfigDir()
	if err != nil {
		return nil, err
	}
	cf, err := config.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the docker config: %w", err)
	}
	return cf, nil
}

// SaveLogin stores user and password for reg where docker login would:
// the credential helper that the Docker config file names for reg, else
// "auths.<reg>.auth" (base64 of "user:password") in the file itself,
// which is created with mode 0600 if missing. It returns the file's path.
func SaveLogin(reg name.Registry, user, password string) (string, error) {
	cf, err := loadConfig()
	if err != nil {
		return "", err
	}
	key := authKey(reg)
	ac := types.AuthConfig{Username: user, Password: password, ServerAddress: key}
	if helper(cf, key) != "" {
		err = cf.GetCredentialsStore(key).Store(ac)
	} else {
		// What docker/cli's file store does, without the warning it
		// prints to os.Stderr.
		if cf.AuthConfigs == nil {
			cf.AuthConfigs = map[string]types.AuthConfig{}
		}
		cf.AuthConfigs[key] = ac
		err = cf.Save()
	}
	if err != nil {
		return "", fmt.Errorf("saving the credentials for %s in %s: %w", key, cf.Filename, err)
	}
	return cf.Filename, nil
}

// helper returns the credential helper the config file names for key:
// its own in "credHelpers", else "credsStore", else "".
func helper(cf *configfile.ConfigFile, key string) string {
	if h, ok := cf.CredentialHelpers[key]; ok {
		return h
	}
	return cf.CredentialsStore
}

// Helper returns the credential helper that the Docker config file names
// for reg ("credHelpers", else "credsStore"), or "" when credentials are
// kept in the file itself.
func Helper(reg name.Registry) (string, error) {
	cf, err := loadConfig()
	if err != nil {
		return "", err
	}
	return helper(cf, authKey(reg)), nil
}

// ErrNotLoggedIn is returned by RemoveLogin when there were no
// credentials to remove.
var ErrNotLoggedIn = errors.New("not logged in")

// RemoveLogin removes the credentials that SaveLogin stored for reg. It
// returns the file's path, and ErrNotLoggedIn if there were none.
func RemoveLogin(reg name.Registry) (string, error) {
	cf, err := loadConfig()
	if err != nil {
		return "", err
	}
	key := authKey(reg)
	st := cf.GetCredentialsStore(key)
	if ac, err := st.Get(key); err == nil && ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" {
		return cf.Filename, fmt.Errorf("%s: %w", key, ErrNotLoggedIn)
	}
	if err := st.Erase(key); err != nil {
		return "", fmt.Errorf("removing the credentials for %s from %s: %w", key, cf.Filename, err)
	}
	return cf.Filename, nil
}
