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
	StartDate string        `env:"START_DATE"`
	ChunkSize int           `env:"CHUNK_SIZE, default=250000"`
	Grace     time.Duration `env:"FINISH_GRACE, default=1h"`
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
	if c.Sync.DestTable == "" && c.Sync.Table != "" {
		name := c.Sync.Table
		if i := strings.LastIndex(name, "."); i >= 0 {
			name = name[i+1:]
		}
		c.Sync.DestTable = strings.Trim(name, `"`)
	}
}

// Validate reports every problem at once, naming each variable.
func (c *Common) Validate(needTopic, needSub bool) error {
	return errors.Join(c.ValidateSource(), c.BQ.Validate("BQ_"), c.PubSub.Validate("PUBSUB_", needTopic, needSub))
}

// ValidateSource checks what reading the source needs: PG_* and SYNC_*.
func (c *Common) ValidateSource() error {
	errs := []error{c.PG.Validate("PG_")}
	s := c.Sync
	if s.Table == "" {
		errs = append(errs, errors.New("SYNC_TABLE is required (the source table, e.g. public.activity_logs)"))
	} else if len(s.Table) > 200 {
		errs = append(errs, errors.New("SYNC_TABLE is too long"))
	}
	if s.IDColumn == "" {
		errs = append(errs, errors.New("SYNC_ID_COLUMN must not be empty"))
	}
	if s.TimestampColumn == "" {
		errs = append(errs, errors.New("SYNC_TIMESTAMP_COLUMN must not be empty"))
	}
	if s.DestTable != "" && !bq.TableNameRE.MatchString(s.DestTable) {
		errs = append(errs, fmt.Errorf("SYNC_DEST_TABLE %q is not a valid BigQuery table name (letters, digits, underscores)", s.DestTable))
	}
	if s.StartDate != "" {
		if _, err := time.Parse(time.DateOnly, s.StartDate); err != nil {
			errs = append(errs, fmt.Errorf("SYNC_START_DATE %q is not a date (YYYY-MM-DD)", s.StartDate))
		}
	}
	if s.ChunkSize < 1 || s.ChunkSize > MaxChunkSize {
		errs = append(errs, fmt.Errorf("SYNC_CHUNK_SIZE %d is out of range (1..%d)", s.ChunkSize, MaxChunkSize))
	}
	if s.Grace < 0 {
		errs = append(errs, fmt.Errorf("SYNC_FINISH_GRACE %s must not be negative", s.Grace))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q must be debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// Start is SYNC_START_DATE parsed; ok is false when unset.
func (s Sync) Start() (time.Time, bool) {
	if s.StartDate == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.DateOnly, s.StartDate)
	return t, err == nil
}

// Spec is the source table as pgsource wants it.
func (s Sync) Spec() pgsource.TableSpec {
	return pgsource.TableSpec{Table: s.Table, IDColumn: s.IDColumn, TimestampColumn: s.TimestampColumn}
}
