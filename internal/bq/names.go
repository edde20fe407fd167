package bq

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/pgbq/pgbq/internal/schema"
)

// columnNameRE is BigQuery's column name rule as its schema documentation
// states it without flexible column names: letters, digits and
// underscores, not starting with a digit, at most 300 characters.
// Flexible names (spaces, dashes, other scripts, a leading digit) are
// not used: they need special handling in the Storage APIs and the
// emulator the tests run against does not model them, so the strict rule
// is the one pgbq can promise.
var columnNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,299}$`)

// reservedPrefixes are prefixes BigQuery refuses in column names, in any
// case.
var reservedPrefixes = []string{"_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER",
	"_CHANGE_SEQUENCE_NUMBER", "_CHANGE_TYPE", "_CHANGE_TIMESTAMP"}

// ownPrefix is kept for the names of columns pgbq adds to its own queries
// (none today); a source column may not start with it.
const ownPrefix = "__pgbq_"

// ErrColumnName marks a column name BigQuery would refuse.
var ErrColumnName = errors.New("column name BigQuery refuses")

// CheckColumnNames says, for each column of t whose name BigQuery would
// refuse and for each pair of names that differ only in case (BigQuery
// column names are case-insensitive), what is wrong and how to rename or
// leave out the column. The loader opens a table only when this passes,
// and `planner check` reports the same.
func CheckColumnNames(t schema.Table) error {
	var errs []error
	fix := func(c schema.Column) string {
		src := c.Name
		if c.SourceName != "" {
			src = c.SourceName
		}
		return fmt.Sprintf(`rename it in SYNC_TABLES ("columns": {%q: "new_name"}) or leave it out ("exclude": [%q])`, src, src)
	}
	label := func(c schema.Column) string {
		if c.SourceName != "" {
			return fmt.Sprintf("%q (renamed from %q)", c.Name, c.SourceName)
		}
		return fmt.Sprintf("%q", c.Name)
	}
	first := map[string]schema.Column{}
	for _, c := range t.Columns {
		switch {
		case !columnNameRE.MatchString(c.Name):
			errs = append(errs, fmt.Errorf("%w: column %s: BigQuery column names hold only letters, digits and underscores, do not start with a digit, and have at most 300 characters: %s",
				ErrColumnName, label(c), fix(c)))
			continue
		case strings.HasPrefix(strings.ToLower(c.Name), ownPrefix):
			errs = append(errs, fmt.Errorf("%w: column %s: pgbq reserves names starting with %s for its own columns: %s", ErrColumnName, label(c), ownPrefix, fix(c)))
			continue
		case reserved(c.Name) != "":
			errs = append(errs, fmt.Errorf("%w: column %s: BigQuery reserves names starting with %s: %s", ErrColumnName, label(c), reserved(c.Name), fix(c)))
			continue
		}
		key := strings.ToLower(c.Name)
		if prev, ok := first[key]; ok {
			errs = append(errs, fmt.Errorf("%w: columns %s and %s differ only in case, and BigQuery column names ignore case: %s",
				ErrColumnName, label(prev), label(c), fix(c)))
			continue
		}
		first[key] = c
	}
	return errors.Join(errs...)
}

func reserved(name string) string {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(strings.ToUpper(name), p) {
			return p
		}
	}
	return ""
}
