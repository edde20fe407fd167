package pgsource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
)

// writeCA writes a self-signed CA certificate (a private CA's, as
// sslrootcert names one) and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pgbq test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A DSN that would send the password to a remote server without
// verifying it is refused, naming PG_DSN and the way to allow it, unless
// PG_ALLOW_UNVERIFIED_TLS allows it; loopback hosts and Unix sockets (local
// development, the tests, the Cloud SQL connector's socket) need nothing.
// The refusal holds for Validate (start-up) and for PoolConfig (where the
// password joins the connection).
func TestUnverifiedTLSRefused(t *testing.T) {
	// libpq's environment variables fill what a DSN leaves out (pgx reads
	// them too): none may decide these cases.
	for _, v := range []string{"PGSSLMODE", "PGHOST", "PGSSLROOTCERT", "PGPORT", "PGSERVICE", "PGSERVICEFILE"} {
		t.Setenv(v, "")
	}
	ca := writeCA(t)
	const refused = "does not verify the server"
	cases := []struct {
		name, dsn string
		want      string // "" accepted
	}{
		{"disable", "host=db.example.com user=u password=s3cret-pw sslmode=disable", refused},
		{"allow", "host=db.example.com user=u password=s3cret-pw sslmode=allow", refused},
		{"prefer", "host=db.example.com user=u password=s3cret-pw sslmode=prefer", refused},
		{"require", "host=db.example.com user=u password=s3cret-pw sslmode=require", refused},
		{"no sslmode (prefer)", "host=10.20.0.5 user=u password=s3cret-pw", refused},
		{"URL without sslmode", "postgres://u:s3cret-pw@db.example.com:5432/app", refused},
		{"verify-ca without a CA", "host=db.example.com user=u password=s3cret-pw sslmode=verify-ca", refused},
		// pgx, like libpq, checks the host name whenever sslrootcert=system.
		{"verify-ca with the system roots", "host=db.example.com user=u password=s3cret-pw sslmode=verify-ca sslrootcert=system", ""},
		{"one of several hosts unverified", "host=127.0.0.1,db.example.com user=u password=s3cret-pw sslmode=disable", refused},
		{"verify-full", "host=db.example.com user=u password=s3cret-pw sslmode=verify-full", ""},
		{"verify-full with a CA", "host=db.example.com user=u password=s3cret-pw sslmode=verify-full sslrootcert=" + ca, ""},
		{"verify-ca with a CA", "host=10.20.0.5 user=u password=s3cret-pw sslmode=verify-ca sslrootcert=" + ca, ""},
		{"require with a CA (libpq: verify-ca)", "host=10.20.0.5 user=u password=s3cret-pw sslmode=require sslrootcert=" + ca, ""},
		{"loopback address", "host=127.0.0.1 port=5432 user=u password=s3cret-pw sslmode=disable", ""},
		{"loopback IPv6", "host=::1 user=u password=s3cret-pw sslmode=disable", ""},
		{"localhost", "postgres://u:s3cret-pw@localhost/app?sslmode=disable", ""},
		{"Cloud SQL socket", "host=/cloudsql/p:us-central1:db port=5432 user=u password=s3cret-pw sslmode=disable", ""},
		{"CA file missing", "host=db.example.com user=u password=s3cret-pw sslmode=verify-full sslrootcert=/nonexistent/ca.pem", "cannot read /nonexistent/ca.pem"},
		{"host with a space", "host='db.example.com sslmode=disable' user=u password=s3cret-pw sslmode=verify-full", "is neither a host name"},
	}
	for _, tc := range cases {
		for _, allow := range []bool{false, true} {
			c := pgsource.Config{DSN: tc.dsn, AllowUnverifiedTLS: allow}
			want := tc.want
			if allow && want == refused {
				want = ""
			}
			errs := map[string]error{"Validate": c.Validate("PG_")}
			_, errs["PoolConfig"] = c.PoolConfig()
			for where, err := range errs {
				switch {
				case want == "" && err != nil:
					t.Errorf("%s (allow=%v): %s: %v, want it accepted", tc.name, allow, where, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s (allow=%v): %s: %v, want an error containing %q", tc.name, allow, where, err, want)
				case err != nil && strings.Contains(err.Error(), "s3cret-pw"):
					t.Errorf("%s: %s: the error shows the password: %v", tc.name, where, err)
				case want == refused && !strings.Contains(err.Error(), "PG_DSN") || want == refused && !strings.Contains(err.Error(), "PG_ALLOW_UNVERIFIED_TLS"):
					t.Errorf("%s: %s: %v does not name PG_DSN and PG_ALLOW_UNVERIFIED_TLS", tc.name, where, err)
				}
			}
		}
	}
}
