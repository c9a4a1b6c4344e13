package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error is a failed exchange with a registry. Its message is one line that
// names the registry, the HTTP status (when there was a response) and, for
// the usual causes, what to do.
type Error struct {
	Registry string // "host[:port]"
	Status   int    // the HTTP status, or 0 when there was no response
	Err      error  // what go-containerregistry or the network returned

	login bool // the credentials were given, not looked up: no hint to log in
}

func (e *Error) Error() string {
	var msg string
	switch e.Status {
	case 0:
		msg = noResponse(e.Err)
	case http.StatusUnauthorized:
		msg = "authentication failed (401 Unauthorized): log in with kiln login " + e.Registry
		if e.login {
			msg = "authentication failed (401 Unauthorized): wrong user name or password"
		}
	case http.StatusForbidden:
		msg = "access denied (403 Forbidden)" + detail(e.Err)
	case http.StatusNotFound:
		msg = "not found (404 Not Found)" + detail(e.Err)
	case http.StatusTooManyRequests:
		msg = "too many requests (429), still after retries" + detail(e.Err)
	default:
		msg = fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
		if e.Status >= 500 {
			msg = "registry error (" + msg + "), still after retries"
		}
		msg += detail(e.Err)
	}
	return e.Registry + ": " + oneLine(msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Describe turns err, from an exchange with registry ("host[:port]")
// through go-containerregistry, into an *Error; nil stays nil. Packages
// that call go-containerregistry's remote themselves (remotecache) use
// it for messages as this package's own.
func Describe(registry string, err error) error { return describe(registry, err) }

// describe is Describe.
func describe(registry string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Registry: registry, Err: err}
	var te *transport.Error
	// A failed TLS handshake says more than the status of the plain HTTP
	// request go-containerregistry tries next on loopback addresses.
	if errors.As(err, &te) && !isTLS(err) {
		e.Status = te.StatusCode
	}
	return e
}

// isTLS reports whether err is a failed verification of a certificate.
func isTLS(err error) bool {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}

// detail returns ": " and the registry's own messages (as in
// {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}),
// or nothing.
func detail(err error) string {
	var te *transport.Error
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return ""
	}
	var msgs []string
	for _, d := range te.Errors {
		m := d.Message
		if m == "" {
			m = string(d.Code)
		}
		msgs = append(msgs, m)
	}
	return ": " + strings.Join(msgs, "; ")
}

// noResponse describes an error that came before any HTTP status.
func noResponse(err error) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &unknown):
		return "TLS certificate signed by an unknown authority: pass --ca-file CA.pem, or --insecure-registry HOST to skip verification"
	case errors.As(err, &hostname):
		return fmt.Sprintf("TLS certificate is not valid for this host (%v): pass --insecure-registry HOST to skip verification", hostname.Error())
	case errors.As(err, &invalid):
		return fmt.Sprintf("TLS certificate is not valid (%v)", invalid.Error())
	case errors.As(err, &header):
		return "the registry does not speak TLS: pass --insecure-registry HOST for plain HTTP"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: is the registry running and the port right?"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset, still after retries"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Sprintf("cannot resolve %s: %v", dns.Name, dns.Err)
	}
	return err.Error()
}

// oneLine joins the lines of s with "; ".
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}
