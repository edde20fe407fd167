package pgsource

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Host is one address a connection string sends its password to: a host
// name, an IP address or a Unix socket directory, and the port.
type Host struct {
	Name string
	Port uint16
}

// Hosts lists every address a parsed configuration may connect to: the
// first host and each fallback (several hosts, or sslmode allow/prefer).
func Hosts(cc *pgx.ConnConfig) []Host {
	hs := []Host{{cc.Host, cc.Port}}
	for _, f := range cc.Fallbacks {
		hs = append(hs, Host{f.Host, f.Port})
	}
	return hs
}

// dnsName is a host name of letters, digits, hyphens and dots (RFC 1123):
// nothing a DSN could smuggle a parameter or a path in.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// local reports whether host never leaves the machine: a Unix socket
// directory (the Cloud SQL connector's /cloudsql/… too, whose socket the
// connector itself encrypts and authenticates) or a loopback address.
func local(host string) bool {
	if strings.HasPrefix(host, "/") {
		return true
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// verifies reports whether a connection attempt with tc checks whom it
// talks to. nil is clear text (disable, allow's first try, prefer's
// fallback); InsecureSkipVerify without a verifier is prefer or require.
// verify-full checks chain and host name; verify-ca checks the chain
// only, which identifies the server only when the roots are a CA of the
// deployment's own (sslrootcert): with no sslrootcert, or "system", any
// server holding a public certificate for any name would pass.
func verifies(tc *tls.Config) bool {
	switch {
	case tc == nil:
		return false
	case !tc.InsecureSkipVerify:
		return true
	case tc.VerifyPeerCertificate == nil:
		return false
	case tc.RootCAs == nil:
		return false
	}
	sys, err := x509.SystemCertPool()
	return err != nil || !tc.RootCAs.Equal(sys)
}

// checkTLS refuses a connection configuration that would send the
// password to a server it has not verified, unless allowed: every remote
// attempt must use sslmode verify-full (or verify-ca with sslrootcert).
func checkTLS(cc *pgx.ConnConfig, allowUnverified bool, name string) error {
	attempts := []struct {
		host string
		tls  *tls.Config
	}{{cc.Host, cc.TLSConfig}}
	for _, f := range cc.Fallbacks {
		attempts = append(attempts, struct {
			host string
			tls  *tls.Config
		}{f.Host, f.TLSConfig})
	}
	var errs []error
	for _, a := range attempts {
		if !local(a.host) && !dnsName.MatchString(a.host) && net.ParseIP(a.host) == nil {
			errs = append(errs, fmt.Errorf("%s: host %q is neither a host name, an IP address nor a socket directory", name, a.host))
			continue
		}
		if local(a.host) || allowUnverified || verifies(a.tls) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: the connection to %s does not verify the server "+
			"(sslmode disable, allow, prefer or require, verify-ca without sslrootcert, or no sslmode: prefer); "+
			"use sslmode=verify-full (with sslrootcert for a private CA), or set PG_ALLOW_UNVERIFIED_TLS=true to accept it", name, a.host))
		break
	}
	return errors.Join(errs...)
}

// parseError says why a connection string did not parse when that is a
// file it names (sslrootcert, sslcert, sslkey) that cannot be read; any
// other cause stays unsaid, as its message may echo the string and its
// password.
func parseError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf(": cannot read %s (%v)", pe.Path, pe.Err)
	}
	return ""
}
