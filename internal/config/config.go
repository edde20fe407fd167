// Package config is the configuration model both binaries share: where the
// source is, where BigQuery data goes, the dates topic, and which table is
// synced how. Every setting comes from an environment variable; Validate
// names each variable that is wrong.
package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/pubsubx"
)

// Sync is what is synced and how.
type Sync struct {
	// Table is the source table, optionally schema-qualified (public.activity_logs).
	Table           string `env:"TABLE"`
	IDColumn        string `env:"ID_COLUMN, default=id"`
	TimestampColumn string `env:"TIMESTAMP_COLUMN, default=created_at"`
	// DestTable defaults to the source table's name without its schema.
	DestTable string `env:"DEST_TABLE"`
	// StartDate (YYYY-MM-DD); empty means the date of the source's first row.
	StartDate string `env:"START_DATE"`
	ChunkSize int    `env:"CHUNK_SIZE, default=250000"`
	// TimeZone is the IANA zone of a timestamp-without-time-zone
	// TimestampColumn's values; empty means UTC.
	TimeZone string        `env:"TIME_ZONE"`
	Grace    time.Duration `env:"FINISH_GRACE, default=1h"`
	// Tables, instead of Table, lists several tables as a JSON array of
	// TableConfig; the single-table settings above are their defaults.
	Tables string `env:"TABLES"`
}

// MaxChunkSize bounds SYNC_CHUNK_SIZE: a chunk is held in memory.
const MaxChunkSize = 2_000_000

// Common is the configuration every binary reads.
type Common struct {
	PG     pgsource.Config `env:", prefix=PG_"`
	BQ     bq.Config       `env:", prefix=BQ_"`
	PubSub pubsubx.Config  `env:", prefix=PUBSUB_"`
	Sync   Sync            `env:", prefix=SYNC_"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL, default=info"`
}

// Load fills c from lookuper (the process environment when nil).
func Load(ctx context.Context, c any, lookuper envconfig.Lookuper) error {
	if lookuper == nil {
		lookuper = envconfig.OsLookuper()
	}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: c, Lookuper: lookuper}); err != nil {
		// go-envconfig names the Go field; name the variable instead.
		msg := err.Error()
		for _, v := range Variables(c) {
			if rest, ok := strings.CutPrefix(msg, v.Path+": "); ok {
				return fmt.Errorf("configuration: %s: %s", v.Name, rest)
			}
		}
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

// Normalize fills defaults that depend on other settings.
func (c *Common) Normalize() {
	c.BQ = c.BQ.WithDefaults()
	if c.PubSub.Project == "" {
		c.PubSub.Project = c.BQ.Project
	}
}

// Validate reports every problem at once, naming each variable.
// use says which Pub/Sub settings the binary needs.
func (c *Common) Validate(use pubsubx.Use) error {
	return errors.Join(c.ValidateSource(), c.BQ.Validate("BQ_"), c.PubSub.Validate("PUBSUB_", use))
}

// ValidateSource checks what reading the source needs: PG_* and SYNC_*.
func (c *Common) ValidateSource() error {
	errs := []error{c.PG.Validate("PG_")}
	s := c.Sync
	if s.Grace < 0 {
		errs = append(errs, fmt.Errorf("SYNC_FINISH_GRACE %s must not be negative", s.Grace))
	}
	if _, err := c.TableConfigs(); err != nil {
		errs = append(errs, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q must be debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}
