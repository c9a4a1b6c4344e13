// Package registry provides kiln's client of OCI registries: TLS with an
// extra CA and the per-registry CAs of certs.d directories (Docker's,
// Podman's, the user's), insecure hosts, credentials from the Docker config
// file and its credential helpers, mirrors and locations from a
// registries.conf (Conf), retries with backoff, parallel uploads that skip
// the blobs a registry has, and errors that fit on one line and name the
// registry and the HTTP status.
//
// It is a thin layer over go-containerregistry's remote package: Options
// become remote.Options once, in New, and every call goes through them.
package registry
