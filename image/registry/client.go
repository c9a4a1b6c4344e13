package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options says how to reach registries. The zero value is usable: the
// system's CA pool, TLS everywhere but on localhost and loopback addresses
// (which go-containerregistry lets fall back to plain HTTP), credentials
// from authn.DefaultKeychain and DefaultBackoff.
type Options struct {
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system pool.
	CAFile string
	// CertDirs are directories of per-registry CA certificates, as Docker
	// and Podman lay them out: DIR/HOST[:PORT]/*.crt are trusted, besides
	// the system pool and CAFile, for HOST[:PORT]. nil means
	// DefaultCertDirs(); an empty list, none.
	CertDirs []string
	// Insecure lists registries, as "host" or "host:port", that may be
	// reached over plain HTTP or over TLS without verifying the
	// certificate.
	Insecure []string
	// Keychain finds credentials. The default is authn.DefaultKeychain:
	// ~/.docker/config.json (or $DOCKER_CONFIG/config.json) and the
	// credential helpers it names.
	Keychain authn.Keychain
	// Jobs is how many blobs are uploaded or fetched at once. The
	// default is 4.
	Jobs int
	// Backoff is how a request that failed with a 5xx status, 408, 429 or
	// a broken connection is retried. The default is DefaultBackoff.
	Backoff *remote.Backoff
	// Conf, if set, is the registries.conf whose [[registry]] tables say
	// where a name is pulled from (mirrors, then location) and pushed to
	// (location), and which registries are insecure.
	Conf *Conf
	// Transport, if set, replaces the HTTP transport that CAFile and
	// Insecure configure (tests use it to count requests).
	Transport http.RoundTripper
}

// DefaultBackoff retries a failed request 4 times, after 0.5s, 1s, 2s
// and 4s.
var DefaultBackoff = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// retryStatusCodes are the statuses worth asking again: the server was
// busy, broken or timed out.
var retryStatusCodes = []int{
	http.StatusRequestTimeout,
	http.StatusTooManyRequests,
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// Client talks to registries with one set of Options.
type Client struct {
	conf      *Conf
	insecure  []string
	transport http.RoundTripper // without retries, auth or scheme choice
	opts      []remote.Option
}

// New checks o and returns a Client that uses it.
func New(o Options) (*Client, error) {
	conf := o.Conf
	if conf == nil {
		conf = &Conf{}
	}
	insecure := append(slices.Clip(o.Insecure), conf.insecureHosts()...)
	t := o.Transport
	if t == nil {
		var err error
		dirs := o.CertDirs
		if dirs == nil {
			dirs = DefaultCertDirs()
		}
		if t, err = newTransport(o.CAFile, dirs, insecure); err != nil {
			return nil, err
		}
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	jobs := o.Jobs
	if jobs == 0 {
		jobs = 4
	}
	backoff := DefaultBackoff
	if o.Backoff != nil {
		backoff = *o.Backoff
	}
	for _, h := range o.Insecure {
		if h == "" || strings.ContainsAny(h, "/@") {
			return nil, fmt.Errorf("insecure registry %q: want HOST or HOST:PORT", h)
		}
	}
	return &Client{
		conf:      conf,
		insecure:  insecure,
		transport: t,
		opts: []remote.Option{
			remote.WithTransport(t),
			remote.WithAuthFromKeychain(kc),
			remote.WithJobs(jobs),
			remote.WithRetryBackoff(backoff),
			remote.WithRetryStatusCodes(retryStatusCodes...),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
			remote.WithUserAgent("kiln"),
		},
	}, nil
}

// newTransport returns go-containerregistry's default transport trusting
// the system pool plus caFile plus, for each host, its certificates in
// certDirs, and skipping verification for the insecure hosts.
func newTransport(caFile string, certDirs, insecure []string) (http.RoundTripper, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading the CA file %s: no PEM certificate in it", caFile)
		}
	}
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("go-containerregistry's default transport is not an *http.Transport")
	}
	clone := base.Clone()
	clone.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	verified := &certsTransport{base: clone, pool: pool, dirs: certDirs}
	if len(insecure) == 0 {
		return verified, nil
	}
	unverified := base.Clone()
	unverified.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with --insecure-registry
	return &hostTransport{insecure: insecure, unverified: unverified, verified: verified}, nil
}

// hostTransport sends requests to the insecure hosts through a transport
// that does not verify certificates, and the others through one that does.
type hostTransport struct {
	insecure             []string
	unverified, verified http.RoundTripper
}

func (t *hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if matchHost(t.insecure, r.URL.Host) {
		return t.unverified.RoundTrip(r)
	}
	return t.verified.RoundTrip(r)
}

// matchHost reports whether host ("name" or "name:port") is one of hosts,
// where an entry without a port matches every port.
func matchHost(hosts []string, host string) bool {
	hostname, _, _ := strings.Cut(host, ":")
	if strings.HasPrefix(host, "[") {
		hostname = host[:strings.Index(host, "]")+1]
	}
	return slices.Contains(hosts, host) || slices.Contains(hosts, hostname)
}

// Reference parses an image reference ("host/repo:tag", "host/repo@digest";
// a name without a host means Docker Hub), marking it insecure when its
// registry is one of Options.Insecure.
func (c *Client) Reference(s string) (name.Reference, error) {
	r, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", s, err)
	}
	if matchHost(c.insecure, r.Context().RegistryStr()) {
		if r, err = name.ParseReference(s, name.Insecure); err != nil {
			return nil, fmt.Errorf("invalid image reference %q: %w", s, err)
		}
	}
	return r, nil
}

// Registry parses a registry's name ("host[:port]"), marking it insecure
// when it is one of Options.Insecure. A scheme ("https://") and a trailing
// path, as in Docker Hub's "https://index.docker.io/v1/", are dropped.
func (c *Client) Registry(s string) (name.Registry, error) {
	host := strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	host, _, _ = strings.Cut(host, "/")
	var opts []name.Option
	if matchHost(c.insecure, host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("invalid registry %q: %w", s, err)
	}
	return r, nil
}

// Location returns where ref is pushed: ref, or the location that
// Options.Conf gives its name.
func (c *Client) Location(ref name.Reference) (name.Reference, error) {
	return c.Reference(c.conf.Push(ref))
}

// sources returns where ref is pulled from: the mirrors and then the
// location that Options.Conf gives its name, else ref itself.
func (c *Client) sources(ref name.Reference) ([]name.Reference, error) {
	var out []name.Reference
	for _, s := range c.conf.Pull(ref) {
		r, err := c.Reference(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.conf.Path, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// fromSources returns what fetch gives for the first of ref's sources
// that it succeeds with, else the errors of all of them.
func fromSources[T any](c *Client, ref name.Reference, fetch func(name.Reference) (T, error)) (T, error) {
	var zero T
	srcs, err := c.sources(ref)
	if err != nil {
		return zero, err
	}
	var errs error
	for _, src := range srcs {
		v, err := fetch(src)
		if err == nil {
			return v, nil
		}
		if errs == nil {
			errs = err
		} else {
			errs = fmt.Errorf("%w; %w", errs, err)
		}
	}
	return zero, errs
}

// Push uploads img's blobs (those the registry does not have, up to
// Options.Jobs at once) and its manifest to ref's location (see
// Location).
func (c *Client) Push(ctx context.Context, img v1.Image, ref name.Reference) error {
	ref, err := c.Location(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, c.with(ctx)...); err != nil {
		return describe(ref.Context().RegistryStr(), err)
	}
	return nil
}

// Image returns the image ref names, from the first of its mirrors and
// location (see Options.Conf) that has it; an image index gives its image
// for linux and kiln's architecture. The manifest and config are fetched
// now, the layers when they are read.
func (c *Client) Image(ctx context.Context, ref name.Reference) (v1.Image, error) {
	return fromSources(c, ref, func(ref name.Reference) (v1.Image, error) { return c.image(ctx, ref) })
}

func (c *Client) image(ctx context.Context, ref name.Reference) (v1.Image, error) {
	img, err := remote.Image(ref, c.with(ctx)...)
	if err != nil {
		return nil, describe(ref.Context().RegistryStr(), err)
	}
	// Fetch the config now, so that its errors are described here too.
	if _, err := img.RawConfigFile(); err != nil {
		return nil, describe(ref.Context().RegistryStr(), err)
	}
	return img, nil
}

// Head returns the descriptor of the manifest ref names, from the first
// of its mirrors and location that has it, without fetching it.
func (c *Client) Head(ctx context.Context, ref name.Reference) (*v1.Descriptor, error) {
	return fromSources(c, ref, func(ref name.Reference) (*v1.Descriptor, error) {
		d, err := remote.Head(ref, c.with(ctx)...)
		if err != nil {
			return nil, describe(ref.Context().RegistryStr(), err)
		}
		return d, nil
	})
}

// RemoteOptions returns the go-containerregistry remote options of c
// (transport, credentials, jobs, retries) bound to ctx, for the packages
// that talk to a registry through package remote themselves.
func (c *Client) RemoteOptions(ctx context.Context) []remote.Option { return c.with(ctx) }

func (c *Client) with(ctx context.Context) []remote.Option {
	return append(slices.Clip(c.opts), remote.WithContext(ctx))
}

// HasHost reports whether ref names its registry, as Docker decides: its
// first path component has a dot or a port, or is "localhost". A short
// name ("busybox", "library/busybox") has none.
func HasHost(ref string) bool {
	domain, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(domain, ".:") || domain == "localhost")
}
