// Package pgsource reads a day of an append-only PostgreSQL table in keyset
// order and decodes it into schema batches. It knows nothing of BigQuery.
package pgsource

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the PostgreSQL connection.
type Config struct {
	// DSN is a libpq connection string or URL. It may hold a password;
	// it is never printed.
	DSN string `env:"DSN"`
	// Password, when set, replaces the DSN's password (for a secret
	// injected on its own).
	Password string `env:"PASSWORD"`
	// AllowUnverifiedTLS accepts a connection to a remote server that
	// does not verify the server's certificate (sslmode require and
	// weaker). Loopback hosts and Unix sockets never need it.
	AllowUnverifiedTLS bool `env:"ALLOW_UNVERIFIED_TLS"`
}

// Validate reports every problem, naming the variable with prefix.
func (c Config) Validate(prefix string) error {
	if c.DSN == "" {
		return fmt.Errorf("%sDSN is required (a PostgreSQL connection string)", prefix)
	}
	cc, err := pgx.ParseConfig(c.DSN)
	if err != nil {
		// The parse error can echo the DSN, password included: do not wrap it.
		return fmt.Errorf("%sDSN is not a valid PostgreSQL connection string%s", prefix, parseError(err))
	}
	return checkTLS(cc, c.AllowUnverifiedTLS, prefix+"DSN")
}

// PoolConfig builds a pool configuration from c.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.DSN)
	if err != nil {
		return nil, errors.New("PG_DSN is not a valid PostgreSQL connection string" + parseError(err))
	}
	// Here too, not only in Validate: this is where the password joins
	// the connection.
	if err := checkTLS(pc.ConnConfig, c.AllowUnverifiedTLS, "PG_DSN"); err != nil {
		return nil, err
	}
	if c.Password != "" {
		pc.ConnConfig.Password = c.Password
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "pgbq"
	// Day bounds are computed in UTC; make the session agree.
	pc.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// Intervals travel as text; ISO 8601 is the form BigQuery reads back.
	pc.ConnConfig.RuntimeParams["intervalstyle"] = "iso_8601"
	// pgx reads the socket 8 KB at a time; a chunk is hundreds of MB of
	// DataRows, and a larger buffer turns most of those reads (a system
	// call each) into copies.
	pc.ConnConfig.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, readBuffer), w)
	}
	pc.ConnConfig.DialFunc = batchedDial(pc.ConnConfig.DialFunc)
	return pc, nil
}

// readBuffer is the receive buffer of a connection.
const readBuffer = 256 << 10
