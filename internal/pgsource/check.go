package pgsource

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgbq/pgbq/internal/schema"
)

// ColumnCheck is how one column would travel to BigQuery.
type ColumnCheck struct {
	Name, SourceType string
	BigQueryType     string // empty when the column cannot be synced
	// Note says how values travel where it is not plain, and which values
	// would stop a date because BigQuery cannot hold them.
	Note string
	// Problem is set when the column cannot be synced at all.
	Problem string
}

// Check describes every column of the table without stopping at the
// first problem. It fails only when the table cannot be read; problems
// with the id or timestamp column come back as SpecErrors in keyErr.
func Check(ctx context.Context, cfg Config, spec TableSpec) (cols []ColumnCheck, keyErr error, err error) {
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer pool.Close()
	if _, _, _, err := describe(ctx, pool, spec); err != nil {
		var specErrs []error
		for _, e := range flatten(err) {
			var se *SpecError
			if errors.As(e, &se) {
				specErrs = append(specErrs, se)
			} else if !errors.Is(e, ErrUnsupported) {
				return nil, nil, err // the table could not be read
			}
		}
		keyErr = errors.Join(specErrs...)
	}
	raw, err := scanColumns(ctx, pool, spec.Table)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range raw {
		c := ColumnCheck{Name: r.name, SourceType: r.typeName}
		col, err := mapRaw(r)
		if err != nil {
			c.Problem = err.Error()
		} else {
			c.BigQueryType, c.Note = col.Type.String(), note(col)
			if col.Repeated {
				c.BigQueryType = "ARRAY<" + c.BigQueryType + ">"
				c.Note = "NULL arrays arrive as []; a NULL element or a multi-dimensional array would stop the date"
			}
		}
		cols = append(cols, c)
	}
	return cols, keyErr, nil
}

// firstUserOID is where the OIDs of user-defined types (enums) begin.
const firstUserOID = 16384

func note(c column) string {
	switch {
	case c.oid == oidNumeric && c.Type == schema.String:
		return "exact decimal text: unconstrained or wider than NUMERIC (38 digits, 9 after the point)"
	case c.oid == oidNumeric:
		return "NaN would stop the date"
	case c.oid == oidTimestamptz || c.oid == oidTimestamp || c.oid == oidDate:
		return "infinity and years outside 1..9999 would stop the date"
	case c.oid == oidTime:
		return "24:00:00 would stop the date"
	case c.oid == oidTimetz:
		return "text with its offset: BigQuery has no zoned time"
	case c.oid == oidInterval:
		return "ISO 8601 text"
	case c.oid == oidBpchar:
		return "padded to its length, as PostgreSQL returns it"
	case c.Type == schema.String && c.format == 0 && c.oid >= firstUserOID:
		return "the enum's label"
	case c.Type == schema.String && c.format == 0:
		return "PostgreSQL's text form"
	}
	return ""
}

// flatten lists the errors joined in err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
