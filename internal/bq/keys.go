package bq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/schema"
)

// The key column in BigQuery: INT64 for an integer key, NUMERIC for a
// numeric one, STRING for text and uuid keys (a uuid as PostgreSQL writes
// it, lowercase and hyphenated). Each compares in the order the source
// reads keys in (see pgsource/keys.go): by value, and STRING by code point
// (https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#comparable_data_types).

// keyCanon is the canonical text of the key column (SQL; qualified by
// alias, "" or "T."): what schema.Key.KeyString holds and fingerprints
// hash. A NUMERIC's trailing fractional zeros are trimmed from CAST's
// text: the canonical form is made explicit rather than read into a
// formatting detail of the cast
// (https://cloud.google.com/bigquery/docs/reference/standard-sql/conversion_functions#cast_as_string).
// On a text without such zeros the trim changes nothing; the emulator's
// cast pads to the type's scale (1.500000000), which it removes.
func (w *Warehouse) keyCanon(alias string) string {
	id := alias + quote(w.idName())
	switch w.table.KeyKind {
	case schema.KeyInt:
		return "CAST(" + id + " AS STRING)"
	case schema.KeyNumeric:
		return `REGEXP_REPLACE(CAST(` + id + ` AS STRING), r'(\.[0-9]*[1-9])0+$|\.0+$', r'\1')`
	}
	return id
}

// keyHash is schema.KeyHash of the key's canonical text (SQL):
// MD5 returns BYTES, its first 4 bytes as 8 hex digits read as a number.
// https://cloud.google.com/bigquery/docs/reference/standard-sql/hash_functions#md5
func (w *Warehouse) keyHash(alias string) string {
	return "SAFE_CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(" + w.keyCanon(alias) + ")), 1, 8)) AS INT64)"
}

// keyLiteral is position k's key as a SQL literal of the key column's
// type. Text is written as its code points, so that no character of a key
// can end the literal or be read as an escape.
// https://cloud.google.com/bigquery/docs/reference/standard-sql/string_functions#code_points_to_string
func keyLiteral(k schema.Key) (string, error) {
	if k.Kind == schema.KeyInt {
		return strconv.FormatInt(k.ID, 10), nil
	}
	text, err := schema.CanonicalKey(k.Kind, k.Text)
	if err != nil {
		return "", err
	}
	switch k.Kind {
	case schema.KeyNumeric:
		return "NUMERIC '" + text + "'", nil
	case schema.KeyUUID:
		return "'" + text + "'", nil // hex digits and hyphens only (CanonicalKey)
	}
	if text == "" {
		return "''", nil
	}
	points := make([]string, 0, len(text))
	for _, r := range text {
		points = append(points, strconv.Itoa(int(r)))
	}
	return "CODE_POINTS_TO_STRING([" + strings.Join(points, ", ") + "])", nil
}

// stagedKey reads a keyset position from a row's timestamp value and its
// key's canonical text (keyCanon).
func (w *Warehouse) stagedKey(tsv, keyv bigquery.Value) (schema.Key, bool) {
	var ts time.Time
	switch v := tsv.(type) {
	case time.Time:
		ts = v
	case civil.DateTime:
		ts = v.In(time.UTC)
	default:
		return schema.Key{}, false
	}
	text, ok := keyv.(string)
	if !ok {
		return schema.Key{}, false
	}
	k := schema.Key{Time: ts.UTC(), Kind: w.table.KeyKind}
	if k.Kind == schema.KeyInt {
		id, err := strconv.ParseInt(text, 10, 64)
		k.ID = id
		return k, err == nil
	}
	text, err := schema.CanonicalKey(k.Kind, text)
	k.Text = text
	return k, err == nil
}

// DayFingerprints summarises each UTC day in [from, to) that has rows in
// the destination (schema.DayFingerprint). It reads the timestamp and key
// columns of those days' partitions.
func (w *Warehouse) DayFingerprints(ctx context.Context, from, to time.Time) (map[civil.Date]schema.DayFingerprint, error) {
	return w.fingerprints(ctx, w.rangeBounds(from, to))
}

// FingerprintDay is the destination's fingerprint of day.
func (w *Warehouse) FingerprintDay(ctx context.Context, day time.Time) (schema.DayFingerprint, error) {
	all, err := w.fingerprints(ctx, w.dayBounds(day))
	return all[civil.DateOf(day)], err
}

func (w *Warehouse) fingerprints(ctx context.Context, where string) (map[civil.Date]schema.DayFingerprint, error) {
	sql := fmt.Sprintf("SELECT DATE(%s) AS day, COUNT(*) AS n, COUNT(DISTINCT %s) AS keys, IFNULL(SUM(%s), 0) AS hash FROM %s WHERE %s GROUP BY 1",
		quote(w.tsName()), quote(w.idName()), w.keyHash(""), w.DestRef(), where)
	type dayRow struct {
		Day  civil.Date `bigquery:"day"`
		N    int64      `bigquery:"n"`
		Keys int64      `bigquery:"keys"`
		Hash int64      `bigquery:"hash"`
	}
	rows, err := Rows[dayRow](w.Query(ctx, sql))
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s by day: %w", w.dest, err)
	}
	out := map[civil.Date]schema.DayFingerprint{}
	for _, r := range rows {
		out[r.Day] = schema.DayFingerprint{Rows: r.N, DistinctKeys: r.Keys, Hash: r.Hash}
	}
	return out, nil
}
