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
	// UpdatedAtColumn is the column that says when a row last changed;
	// empty: tables are append-only (updates not followed).
	UpdatedAtColumn string `env:"UPDATED_AT_COLUMN"`
	// ChangesGrace is how far before the newest change read the next
	// planner run looks again, for changes that commit late or were
	// stamped by a clock that lags.
	ChangesGrace time.Duration `env:"CHANGES_GRACE, default=10m"`
	// SweepDays is how many days each planner run compares by
	// fingerprint, for a table that follows changes, to find deleted and
	// moved rows; 0 turns the sweep off.
	SweepDays int `env:"SWEEP_DAYS, default=31"`
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
	// A variable with a default that is set to "" would read as the
	// type's zero (SYNC_CHUNK_SIZE= as 0): say so instead of guessing.
	var empty []error
	for _, v := range Variables(c) {
		if val, set := lookuper.Lookup(v.Name); set && val == "" && v.Default != "" {
			empty = append(empty, fmt.Errorf("%s is set but empty: unset it for the default (%s) or give a value", v.Name, v.Default))
		}
	}
	if len(empty) > 0 {
		return fmt.Errorf("configuration:\n%w", errors.Join(empty...))
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
	if s.ChangesGrace < 0 {
		errs = append(errs, fmt.Errorf("SYNC_CHANGES_GRACE %s must not be negative", s.ChangesGrace))
	}
	if s.SweepDays < 0 || s.SweepDays > 3660 {
		errs = append(errs, fmt.Errorf("SYNC_SWEEP_DAYS %d is out of range (0..3660; 0 turns the sweep off)", s.SweepDays))
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
