package pgsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	excluded := map[string]bool{}
	for _, name := range spec.Exclude {
		excluded[name] = true
	}
	for _, r := range raw {
		c := ColumnCheck{Name: r.name, SourceType: r.typeName}
		col, err := mapRaw(r)
		switch {
		case excluded[r.name]:
			c.Note = "excluded: not synced"
		case !r.canSelect:
			c.Problem = "no SELECT privilege on the column"
		case err != nil:
			c.Problem = err.Error()
		default:
			c.BigQueryType, c.Note = col.Type.String(), note(col)
			if col.Repeated {
				c.BigQueryType = "ARRAY<" + c.BigQueryType + ">"
				c.Note = "NULL arrays arrive as []; a NULL element or a multi-dimensional array would stop the date"
			}
			if to, ok := spec.Rename[r.name]; ok {
				c.Note = strings.TrimSuffix(fmt.Sprintf("arrives as %q; %s", to, c.Note), "; ")
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

// idIndexSQL says of the id column ($2) of table $1 whether it may hold
// NULL, whether a unique index on it alone (a primary key counts) proves
// its values unique, and whether an index leads with it (so that counting
// its NULLs is cheap).
const idIndexSQL = `
SELECT NOT a.attnotnull,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
               AND i.indpred IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum),
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisvalid AND i.indkey[0] = a.attnum)
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.oid = to_regclass($1) AND a.attname = $2`

// UniqueIDs reports whether a unique index on the id column alone proves
// its values unique. The loader then knows that rows it read at distinct
// keyset positions are distinct rows with distinct ids, and may trust row
// counts where it would otherwise count distinct ids (see loader.publish).
func (s *Source) UniqueIDs(ctx context.Context) (bool, error) {
	_, unique, _, err := s.idFacts(ctx)
	return unique, err
}

// idFacts runs idIndexSQL for the id column.
func (s *Source) idFacts(ctx context.Context) (nullable, unique, indexed bool, err error) {
	if err := s.pool.QueryRow(ctx, idIndexSQL, s.Name(), s.cols[s.table.IDIndex].Name).Scan(&nullable, &unique, &indexed); err != nil {
		return false, false, false, fmt.Errorf("inspect the id column of %s: %w", s.Name(), err)
	}
	return nullable, unique, indexed, nil
}

// KeyCheck looks at what the keyset needs of the id column beyond its
// type. Rows with a NULL id cannot be synced (their dates fail naming
// them): counted where an index makes that cheap, and then a problem.
// A nullable id column, or one whose uniqueness no index proves, is a
// warning: pgbq then finds NULLs and duplicates only date by date, as
// it syncs them (duplicates within a date hold the date back; duplicates
// in different dates sync, and planner verify counts them in BigQuery).
func (s *Source) KeyCheck(ctx context.Context) (warnings []string, problems []error, err error) {
	id := s.cols[s.table.IDIndex].Name
	nullable, unique, indexed, err := s.idFacts(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.table.KeyKind != schema.KeyInt {
		w, p, err := s.orderCheck(ctx, unique)
		if err != nil {
			return nil, nil, err
		}
		warnings, problems = append(warnings, w...), append(problems, p...)
	} else if !unique {
		warnings = append(warnings, fmt.Sprintf("no unique index on the id column %q alone proves its values unique: "+
			"duplicates within a date hold that date back, duplicates in different dates sync and `planner verify` reports them", id))
	}
	if !nullable {
		return warnings, problems, nil
	}
	if !indexed {
		return append(warnings, fmt.Sprintf("the id column %q may hold NULL and no index leads with it, so NULL ids are not counted here: "+
			"a date with one fails naming it (make the column NOT NULL to rule them out)", id)), problems, nil
	}
	warnings = append(warnings, fmt.Sprintf("the id column %q may hold NULL (make it NOT NULL to rule that out)", id))
	var n int64
	sql := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s IS NULL`, s.Name(), pgx.Identifier{id}.Sanitize())
	if err := s.pool.QueryRow(ctx, sql).Scan(&n); err != nil {
		return nil, nil, fmt.Errorf("count NULL ids of %s: %w", s.Name(), err)
	}
	if n > 0 {
		problems = append(problems, fmt.Errorf("%w: table %s: %d rows have a NULL id (column %q): pgbq cannot place them in the keyset, "+
			"so their dates fail; give them ids", ErrUnsupported, s.Name(), n, id))
	}
	return warnings, problems, nil
}

// DayNullIDs fails with an ErrUnsupported naming the rows of the UTC day
// starting at day whose id is NULL, if there are any. ReadChunk finds such
// a row when it reads one; a row sharing its timestamp with the last row
// of a chunk falls outside the next chunk's keyset condition instead, and
// shows only as a count that differs.
func (s *Source) DayNullIDs(ctx context.Context, day time.Time) error {
	return s.nullIDs(ctx, day, day.AddDate(0, 0, 1))
}

// nullIDs is the error for the rows of [from, to) whose id is NULL (nil
// when there are none).
func (s *Source) nullIDs(ctx context.Context, from, to time.Time) error {
	id := s.cols[s.table.IDIndex].Name
	ts := pgx.Identifier{s.cols[s.table.TimestampIndex].Name}.Sanitize()
	sql := fmt.Sprintf(`SELECT count(*), min(%s)::text, max(%s)::text FROM %s WHERE %s >= $1 AND %s < $2 AND %s IS NULL%s`,
		ts, ts, s.Name(), ts, ts, pgx.Identifier{id}.Sanitize(), s.keepRange(3))
	wlo, whi, keep, err := s.span(ctx, from, to)
	if err != nil {
		return err
	}
	var n int64
	var lo, hi *string
	if err := s.pool.QueryRow(ctx, sql, append([]any{wlo, whi}, keep...)...).Scan(&n, &lo, &hi); err != nil {
		return fmt.Errorf("count NULL ids of %s: %w", s.Name(), err)
	}
	if n == 0 {
		return nil
	}
	where := ""
	if lo != nil && hi != nil {
		where = fmt.Sprintf(" (%s %s to %s)", s.cols[s.table.TimestampIndex].Name, *lo, *hi)
	}
	return fmt.Errorf("%w: table %s, date %s: %d rows have a NULL id (column %q)%s: pgbq needs every row's id to place it in the keyset; give them ids",
		ErrUnsupported, s.Name(), from.UTC().Format(time.DateOnly), n, id, where)
}

// orderIndexSQL says of the timestamp ($2) and key ($3) columns of table
// $1 whether a valid btree index leads with (timestamp, key), and whether
// one does whose key column compares byte by byte ("C" or "POSIX"; an
// index in the default collation does not serve COLLATE "C" even where
// the database's collation is C: PostgreSQL matches collations by name);
// and what the server encoding is.
const orderIndexSQL = `
SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               WHERE i.indrelid = c.oid AND i.indisvalid AND am.amname = 'btree' AND i.indnkeyatts >= 2
                 AND i.indkey[0] = t.attnum AND i.indkey[1] = a.attnum),
       EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               LEFT JOIN pg_collation co ON co.oid = i.indcollation[1]
               WHERE i.indrelid = c.oid AND i.indisvalid AND am.amname = 'btree' AND i.indnkeyatts >= 2
                 AND i.indkey[0] = t.attnum AND i.indkey[1] = a.attnum
                 AND co.collname IN ('C', 'POSIX')),
       current_setting('server_encoding')
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_attribute t ON t.attrelid = c.oid
WHERE c.oid = to_regclass($1) AND t.attname = $2 AND a.attname = $3`

// orderCheck is KeyCheck's part for a key that is not an integer: such a
// key must be proved unique by a unique index (a duplicate would make
// positions ambiguous in both databases), and its (timestamp, key) order
// should be an index's. A text key is read COLLATE "C" whatever its
// indexes say — BigQuery compares by code point, which is byte order only
// in a UTF-8 database — so an index in another collation serves only the
// timestamp order: PostgreSQL reads the day from the position's timestamp
// on and sorts the keys of each timestamp (an incremental sort), checking
// the position row by row. That is correct, and costs little where few
// rows share a timestamp, so it is a warning that says the cost and the
// index to create, not a refusal.
func (s *Source) orderCheck(ctx context.Context, unique bool) (warnings []string, problems []error, err error) {
	id, ts := s.cols[s.table.IDIndex].Name, s.cols[s.table.TimestampIndex].Name
	kind := s.table.KeyKind
	if !unique {
		problems = append(problems, fmt.Errorf("%w: table %s: the %s id column %q has no unique index on it alone (a primary key counts): "+
			"pgbq needs one to place every row at one keyset position; create one or choose another id column", ErrUnsupported, s.Name(), kind, id))
	}
	var ordered, byteOrdered bool
	var encoding string
	if err := s.pool.QueryRow(ctx, orderIndexSQL, s.Name(), ts, id).Scan(&ordered, &byteOrdered, &encoding); err != nil {
		return nil, nil, fmt.Errorf("inspect the indexes of %s: %w", s.Name(), err)
	}
	want := fmt.Sprintf("CREATE INDEX ON %s (%s, %s)", s.Name(), pgx.Identifier{ts}.Sanitize(), keyOrder(kind, id))
	switch {
	case kind == schema.KeyText && encoding != "UTF8" && encoding != "SQL_ASCII":
		problems = append(problems, fmt.Errorf("%w: table %s: the text id column %q is in a %s database: pgbq compares text keys byte by byte, "+
			"which agrees with BigQuery's code point order only in UTF-8", ErrUnsupported, s.Name(), id, encoding))
	case kind == schema.KeyText && ordered && !byteOrdered:
		warnings = append(warnings, fmt.Sprintf("the (%s, %s) index does not order the text id column %q byte by byte; pgbq reads text keys "+
			`COLLATE "C" (BigQuery's order), so that index serves only the timestamp order and PostgreSQL sorts the keys of each timestamp `+
			"(cheap while few rows share a timestamp): %s makes each chunk a plain index range scan", ts, id, id, want))
	case !ordered || (kind == schema.KeyText && !byteOrdered):
		warnings = append(warnings, fmt.Sprintf("no index leads with (%s, %s): each chunk reads and sorts the rest of the day; %s makes it an index range scan",
			ts, id, want))
	}
	return warnings, problems, nil
}
