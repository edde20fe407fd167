package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/pgsource"
)

// TableConfig is one synced table. In SYNC_TABLES each field may be left
// out; it then takes the single-table variable's value (SYNC_ID_COLUMN,
// SYNC_TIMESTAMP_COLUMN, SYNC_START_DATE, SYNC_CHUNK_SIZE,
// SYNC_UPDATED_AT_COLUMN) or, for
// dest_table, the source table's name without its schema.
type TableConfig struct {
	Table           string `json:"table"`
	IDColumn        string `json:"id_column,omitempty"`
	TimestampColumn string `json:"timestamp_column,omitempty"`
	DestTable       string `json:"dest_table,omitempty"`
	StartDate       string `json:"start_date,omitempty"`
	ChunkSize       int    `json:"chunk_size,omitempty"`
	// TimeZone: the IANA zone of a timestamp-without-time-zone key
	// column's values (empty: UTC).
	TimeZone string `json:"time_zone,omitempty"`
	// Columns renames source columns on their way to BigQuery (source
	// name → BigQuery name), for names BigQuery refuses; Exclude leaves
	// columns out. Only in SYNC_TABLES.
	Columns map[string]string `json:"columns,omitempty"`
	Exclude []string          `json:"exclude,omitempty"`
	// UpdatedAt is the column that says when a row last changed (set on
	// insert and on every update); empty: the table is append-only and
	// updates are not followed (docs/changes.md).
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Spec is the source table as pgsource wants it.
func (t TableConfig) Spec() pgsource.TableSpec {
	return pgsource.TableSpec{Table: t.Table, IDColumn: t.IDColumn, TimestampColumn: t.TimestampColumn, TimeZone: t.TimeZone,
		Rename: t.Columns, Exclude: t.Exclude}
}

// Start is the start date; ok is false when unset.
func (t TableConfig) Start() (time.Time, bool) {
	d, err := time.Parse(time.DateOnly, t.StartDate)
	return d, t.StartDate != "" && err == nil
}

// TableConfigs lists the configured tables, defaults filled in, or says
// what is wrong naming the variable (and the entry of SYNC_TABLES).
func (c *Common) TableConfigs() ([]TableConfig, error) {
	s := c.Sync
	var tables []TableConfig
	switch {
	case s.Tables != "" && s.Table != "":
		return nil, errors.New("SYNC_TABLE and SYNC_TABLES are both set: use one")
	case s.Tables != "":
		dec := json.NewDecoder(strings.NewReader(s.Tables))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tables); err != nil {
			return nil, fmt.Errorf("SYNC_TABLES is not a JSON array of tables (fields: table, id_column, timestamp_column, time_zone, dest_table, start_date, chunk_size, columns, exclude, updated_at): %v", err)
		}
		if len(tables) == 0 {
			return nil, errors.New("SYNC_TABLES lists no table")
		}
	case s.Table != "":
		tables = []TableConfig{{Table: s.Table, DestTable: s.DestTable}}
	default:
		return nil, errors.New("SYNC_TABLE is required (the source table, e.g. public.activity_logs), or SYNC_TABLES for several")
	}
	var errs []error
	seen := map[string]int{} // destination → first entry
	for i := range tables {
		t := &tables[i]
		name := "SYNC_TABLE"
		field := func(single, key string) string {
			if s.Tables == "" {
				return single
			}
			return fmt.Sprintf("SYNC_TABLES[%d].%s", i, key)
		}
		if s.Tables != "" {
			name = fmt.Sprintf("SYNC_TABLES[%d].table", i)
		}
		t.IDColumn = or(t.IDColumn, s.IDColumn)
		t.TimestampColumn = or(t.TimestampColumn, s.TimestampColumn)
		t.StartDate = or(t.StartDate, s.StartDate)
		t.TimeZone = or(t.TimeZone, s.TimeZone)
		t.UpdatedAt = or(t.UpdatedAt, s.UpdatedAtColumn)
		if t.ChunkSize == 0 {
			t.ChunkSize = s.ChunkSize
		}
		if t.DestTable == "" {
			n := t.Table
			if j := strings.LastIndex(n, "."); j >= 0 {
				n = n[j+1:]
			}
			t.DestTable = strings.Trim(n, `"`)
		}
		switch {
		case t.Table == "":
			errs = append(errs, fmt.Errorf("%s is required", name))
		case len(t.Table) > 200:
			errs = append(errs, fmt.Errorf("%s is too long", name))
		}
		if t.IDColumn == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", field("SYNC_ID_COLUMN", "id_column")))
		}
		if t.TimestampColumn == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", field("SYNC_TIMESTAMP_COLUMN", "timestamp_column")))
		}
		if t.Table != "" && !bq.TableNameRE.MatchString(t.DestTable) {
			errs = append(errs, fmt.Errorf("%s %q is not a valid BigQuery table name (letters, digits, underscores)", field("SYNC_DEST_TABLE", "dest_table"), t.DestTable))
		} else if j, dup := seen[t.DestTable]; dup {
			// One destination holds one source table: two would mix
			// their rows and columns.
			errs = append(errs, fmt.Errorf("%s and SYNC_TABLES[%d] (%s) both sync into the BigQuery table %q: "+
				"set \"dest_table\" on one of them to another name, e.g. {\"table\": %q, \"dest_table\": %q}",
				name, j, tables[j].Table, t.DestTable, t.Table, suggestDest(t.Table)))
		}
		if _, dup := seen[t.DestTable]; !dup {
			seen[t.DestTable] = i
		}
		if t.StartDate != "" {
			if _, err := time.Parse(time.DateOnly, t.StartDate); err != nil {
				errs = append(errs, fmt.Errorf("%s %q is not a date (YYYY-MM-DD)", field("SYNC_START_DATE", "start_date"), t.StartDate))
			}
		}
		if t.TimeZone != "" {
			if _, err := time.LoadLocation(t.TimeZone); err != nil {
				errs = append(errs, fmt.Errorf("%s %q is not a time zone (an IANA name such as Europe/Berlin)", field("SYNC_TIME_ZONE", "time_zone"), t.TimeZone))
			}
		}
		if t.UpdatedAt != "" && (t.UpdatedAt == t.TimestampColumn || t.UpdatedAt == t.IDColumn) {
			errs = append(errs, fmt.Errorf("%s %q is the table's %s: name the column that says when a row last changed",
				field("SYNC_UPDATED_AT_COLUMN", "updated_at"), t.UpdatedAt, map[bool]string{true: "timestamp column", false: "id column"}[t.UpdatedAt == t.TimestampColumn]))
		}
		if t.ChunkSize < 1 || t.ChunkSize > MaxChunkSize {
			errs = append(errs, fmt.Errorf("%s %d is out of range (1..%d)", field("SYNC_CHUNK_SIZE", "chunk_size"), t.ChunkSize, MaxChunkSize))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tables, nil
}

// suggestDest is a destination name for a source table that keeps its
// schema: shop.orders becomes shop_orders.
func suggestDest(table string) string {
	n := strings.NewReplacer(`"`, "", ".", "_").Replace(table)
	var b strings.Builder
	for _, r := range n {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	return b.String()
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
