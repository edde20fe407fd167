// Package syncstate keeps sync_control: what pgbq knows about each
// (table, date). It is an append-only log written with streaming inserts
// (no DML, so no DML queue to fill however many loaders run) and a view,
// sync_control, that shows the newest row of each (table_name, sync_date).
package syncstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/googleapis/gax-go/v2"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
)

// Table names in the state dataset.
const (
	LogTable = "sync_control_log"
	View     = "sync_control"
)

// State is the state column of sync_control: how far a date got, or, on
// the ControlDate row of a table, whether the table is paused. Its values
// are the constants below; a value read back that is none of them is kept
// as it is (String never fails).
type State string

// States a date moves through.
const (
	StatePlanned     State = "planned"     // a message was published for it
	StateInProgress  State = "in_progress" // chunks are being staged
	StatePublished   State = "published"   // destination holds the staged rows; not closed or not yet verified
	StateFinished    State = "finished"    // closed and verified: fingerprints (count, key hash) equal
	StateMismatch    State = "mismatch"    // fingerprints differ after publish; the date is re-synced
	StateFailed      State = "failed"      // a permanent error; see detail
	StateReopened    State = "reopened"    // re-opened (found to differ, or by `planner resync`); it is synced again
	StateQuarantined State = "quarantined" // failed too often; not planned again until `planner resync`
)

// Table-level states, recorded on the table's ControlDate row.
const (
	StatePaused  State = "paused"  // `planner pause`: not planned; loaders ack its messages without work
	StateResumed State = "resumed" // `planner resume`
)

// ControlDate is the sync_date of a table's control rows (pause and
// resume). A source row can have that date too (BigQuery's range starts
// there): control rows are told apart by their state (isControl), in the
// view and in every read, so the date 0001-01-01 is recorded like any
// other and neither hides the other.
var ControlDate = civil.Date{Year: 1, Month: 1, Day: 1}

// isControl is the SQL condition "this row is a control row".
var isControl = fmt.Sprintf("IFNULL(state, '') IN ('%s', '%s', '%s')", StatePaused, StateResumed, StateTracked)

// String is the state's name ("none" when empty).
func (s State) String() string {
	if s == "" {
		return "none"
	}
	return string(s)
}

// Entry is one row of the log.
type Entry struct {
	Table         string
	Date          civil.Date
	LastMaxID     int64
	IsFinished    bool
	SyncedAt      time.Time
	State         State
	LastCreatedAt time.Time // keyset position: timestamp of the last staged row
	LastID        int64     // keyset position: id of the last staged row (an integer key)
	// LastKey is the keyset position's key when it is not an integer: its
	// canonical text (schema.Key.KeyString); nil for integer keys, which
	// keep last_id (and last_max_id) as the original design defines them.
	LastKey      *string
	RowsStaged   int64
	SourceRows   int64
	BigQueryRows int64
	Detail       string
	Writer       string
	// Epoch orders a date's entries across writers whose clocks differ:
	// each re-opening starts a new epoch (the epoch it read plus one),
	// every other entry carries the epoch its writer read, and the view
	// shows only the entries of a date's newest epoch. 0 before any
	// re-opening (and for rows written before the column existed).
	Epoch int64
}

var logSchema = bigquery.Schema{
	{Name: "table_name", Type: bigquery.StringFieldType, Required: true},
	{Name: "sync_date", Type: bigquery.DateFieldType, Required: true},
	{Name: "last_max_id", Type: bigquery.IntegerFieldType},
	{Name: "is_finished", Type: bigquery.BooleanFieldType, Required: true},
	{Name: "synced_at", Type: bigquery.TimestampFieldType, Required: true},
	{Name: "state", Type: bigquery.StringFieldType, Required: true},
	{Name: "last_created_at", Type: bigquery.TimestampFieldType},
	{Name: "last_id", Type: bigquery.IntegerFieldType},
	{Name: "rows_staged", Type: bigquery.IntegerFieldType},
	{Name: "source_rows", Type: bigquery.IntegerFieldType},
	{Name: "bigquery_rows", Type: bigquery.IntegerFieldType},
	{Name: "detail", Type: bigquery.StringFieldType},
	{Name: "writer", Type: bigquery.StringFieldType},
	{Name: "epoch", Type: bigquery.IntegerFieldType},
	{Name: "last_key", Type: bigquery.StringFieldType},
}

// epochCut keeps, of a date's rows (the columns of the log, with
// partition the window's PARTITION BY), those of its newest epoch (NULL,
// from before the column, is 0); within epoch 0, where re-openings did
// not bump an epoch, only the rows from its newest re-opening on, by
// synced_at as before.
func epochCut(partition string) string {
	return fmt.Sprintf(`SELECT *,
    MAX(IFNULL(epoch, 0)) OVER (%[1]s) AS newest_epoch,
    MAX(IF(state = '%[2]s' AND IFNULL(epoch, 0) = 0, synced_at, NULL)) OVER (%[1]s) AS reopened_at`, partition, StateReopened)
}

// epochWhere is the condition that goes with epochCut.
const epochWhere = `IFNULL(epoch, 0) = newest_epoch AND (newest_epoch > 0 OR reopened_at IS NULL OR synced_at >= reopened_at)`

// Store reads and writes sync_control in one dataset.
type Store struct {
	client  *bigquery.Client
	project string
	dataset string
	// now stamps appended entries; time.Now when nil.
	now func() time.Time
}

// New returns a store in project.dataset.
func New(client *bigquery.Client, project, dataset string) *Store {
	return &Store{client: client, project: project, dataset: dataset}
}

// Stamp gives e its synced_at from the store's clock unless it has one.
// Stamping once before retrying an Append keeps the row's content, and so
// its insertId, the same on every attempt.
func (s *Store) Stamp(e Entry) Entry {
	if e.SyncedAt.IsZero() {
		clock := s.now
		if clock == nil {
			clock = time.Now
		}
		e.SyncedAt = clock().UTC()
	}
	return e
}

// WithClock returns a copy of s that stamps entries with now's time.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

// Migrate creates the log table and the view when missing and keeps the
// view's definition current. It runs once per deployment (`planner
// migrate`, run by Cloud Build after a deploy and by the dev stack), never
// per loader instance: BigQuery allows 5 metadata updates per 10 s per
// table and a limited rate of tables.insert, which fifty instances starting
// together would exceed.
func (s *Store) Migrate(ctx context.Context) error {
	ds := s.client.Dataset(s.dataset)
	err := ds.Table(LogTable).Create(ctx, &bigquery.TableMetadata{
		Schema:           logSchema,
		TimePartitioning: &bigquery.TimePartitioning{Type: bigquery.DayPartitioningType, Field: "synced_at"},
		Clustering:       &bigquery.Clustering{Fields: []string{"table_name", "sync_date"}},
		Description:      "pgbq checkpoint log; read the sync_control view.",
	})
	if err != nil && !bq.IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("create %s: %w", LogTable, err)
	}
	// Per date, rows of an epoch before its newest no longer count (a
	// re-opening starts an epoch: the order of re-openings and what
	// follows them never depends on the clocks of the machines that wrote
	// them); of the rest a finished row wins over any other (finished
	// means verified; a loader that lost a race may still append a
	// checkpoint after it), then the newest. A table's control rows
	// (isControl) are a sequence of their own beside the date they share.
	if err := s.addColumns(ctx); err != nil {
		return err
	}
	viewSQL := fmt.Sprintf(`SELECT table_name, sync_date, last_max_id, is_finished, synced_at, state,
  last_created_at, last_id, last_key, rows_staged, source_rows, bigquery_rows, detail, writer, IFNULL(epoch, 0) AS epoch
FROM (
  %s
  FROM %s
)
WHERE %s
QUALIFY ROW_NUMBER() OVER (PARTITION BY table_name, sync_date, %s ORDER BY is_finished DESC, synced_at DESC) = 1`,
		epochCut("PARTITION BY table_name, sync_date, "+isControl), bq.Ref(s.project, s.dataset, LogTable), epochWhere, isControl)
	view := ds.Table(View)
	err = view.Create(ctx, &bigquery.TableMetadata{ViewQuery: viewSQL,
		Description: "pgbq: the current state of each (table_name, sync_date)."})
	if bq.IsStatus(err, http.StatusConflict) {
		// Keep an existing view's definition current.
		var meta *bigquery.TableMetadata
		if meta, err = view.Metadata(ctx); err == nil && meta.ViewQuery != viewSQL {
			_, err = view.Update(ctx, bigquery.TableMetadataToUpdate{ViewQuery: viewSQL}, "")
		}
	}
	if err != nil {
		return fmt.Errorf("create view %s: %w", View, err)
	}
	return nil
}

// Check confirms that Migrate has run: it only reads metadata, retrying
// with jitter while the tables are missing (a deploy may still be
// migrating), and then says what to run.
func (s *Store) Check(ctx context.Context) error {
	bo := gax.Backoff{Initial: time.Second, Max: 15 * time.Second, Multiplier: 2}
	var err error
	for attempt := 0; attempt < 6; attempt++ {
		if err = s.check(ctx); err == nil || !errors.Is(err, errNotMigrated) {
			return err
		}
		if serr := gax.Sleep(ctx, bo.Pause()); serr != nil {
			break
		}
	}
	return err
}

var errNotMigrated = errors.New("state tables missing: run `planner migrate` once for this configuration")

func (s *Store) check(ctx context.Context) error {
	for _, name := range []string{LogTable, View} {
		_, err := s.client.Dataset(s.dataset).Table(name).Metadata(ctx)
		if bq.IsStatus(err, http.StatusNotFound) {
			return fmt.Errorf("%s.%s: %w", s.dataset, name, errNotMigrated)
		}
		if err != nil {
			return fmt.Errorf("read %s.%s: %w", s.dataset, name, err)
		}
	}
	return nil
}

// Save gives each row an insertId derived from its content, so that a
// streamed row sent again (the client's or our own retry after a lost
// answer) is de-duplicated by BigQuery instead of counted twice. Entries
// get their synced_at before the first attempt, so a retry sends the same
// content.
func (e Entry) Save() (map[string]bigquery.Value, string, error) {
	row := map[string]bigquery.Value{
		"table_name":  e.Table,
		"sync_date":   e.Date,
		"is_finished": e.IsFinished,
		"synced_at":   e.SyncedAt,
		"state":       string(e.State),
		"detail":      e.Detail,
		"writer":      e.Writer,
		"rows_staged": e.RowsStaged,
	}
	if e.Epoch != 0 {
		// Left out at 0, so that rows of epoch 0 also stream into a log
		// that `planner migrate` has not extended yet.
		row["epoch"] = e.Epoch
	}
	if e.LastMaxID != 0 || e.RowsStaged > 0 {
		row["last_max_id"] = e.LastMaxID
	}
	if !e.LastCreatedAt.IsZero() {
		row["last_created_at"] = e.LastCreatedAt
		row["last_id"] = e.LastID
		if e.LastKey != nil {
			// Only for keys that are not integers: rows of integer keys
			// also stream into a log that `planner migrate` has not
			// extended yet.
			row["last_key"] = *e.LastKey
		}
	}
	if e.State == StateFinished || e.State == StatePublished || e.State == StateMismatch {
		row["source_rows"] = e.SourceRows
		row["bigquery_rows"] = e.BigQueryRows
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%s\x00%s\x00%d\x00%d\x00%d\x00%d\x00%d\x00%s\x00%s",
		e.Table, e.Date, e.SyncedAt.UnixNano(), e.State, e.Writer, e.LastMaxID, e.LastCreatedAt.UnixNano(), e.LastID,
		e.RowsStaged, e.SourceRows, e.Detail, strconv.FormatInt(e.BigQueryRows, 10)+epochSuffix(e.Epoch)+keySuffix(e.LastKey))
	return row, hex.EncodeToString(h.Sum(nil))[:32], nil
}

// Append writes entries. Streaming inserts have no DML queue, so any
// number of loaders can append at once.
func (s *Store) Append(ctx context.Context, entries ...Entry) error {
	for i := range entries {
		entries[i] = s.Stamp(entries[i])
	}
	if err := s.client.Dataset(s.dataset).Table(LogTable).Inserter().Put(ctx, entries); err != nil {
		return fmt.Errorf("append to %s: %w", LogTable, err)
	}
	return nil
}

// Latest returns the current entry of every date of table.
func (s *Store) Latest(ctx context.Context, table string) (map[civil.Date]Entry, error) {
	return s.latest(ctx, table, " AND NOT "+isControl)
}

func (s *Store) latest(ctx context.Context, table, filter string) (map[civil.Date]Entry, error) {
	if !bq.TableNameRE.MatchString(table) {
		return nil, fmt.Errorf("read %s: bad table name %q", View, table)
	}
	rows, err := bq.Rows[entryRow](bq.RunQuery(ctx, s.client, s.entriesSQL(table, filter)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", View, err)
	}
	out := make(map[civil.Date]Entry, len(rows))
	for _, r := range rows {
		out[r.Date] = r.entry()
	}
	return out, nil
}

// entriesSQL selects the current entries of table that match filter (SQL
// starting with " AND ", or ""; followed by any ORDER BY) as entryRow reads them.
func (s *Store) entriesSQL(table, filter string) string {
	return fmt.Sprintf(`SELECT table_name, sync_date, COALESCE(last_max_id, 0) AS last_max_id, is_finished, synced_at, state,
  last_created_at, COALESCE(last_id, 0) AS last_id, last_key, COALESCE(rows_staged, 0) AS rows_staged,
  COALESCE(source_rows, 0) AS source_rows, COALESCE(bigquery_rows, 0) AS bigquery_rows,
  COALESCE(detail, '') AS detail, COALESCE(writer, '') AS writer, epoch
FROM %s WHERE table_name = '%s'%s`, bq.Ref(s.project, s.dataset, View), table, filter)
}

// entryRow is a row of the view as the query above selects it.
type entryRow struct {
	Table         string                 `bigquery:"table_name"`
	Date          civil.Date             `bigquery:"sync_date"`
	LastMaxID     int64                  `bigquery:"last_max_id"`
	IsFinished    bool                   `bigquery:"is_finished"`
	SyncedAt      time.Time              `bigquery:"synced_at"`
	State         string                 `bigquery:"state"`
	LastCreatedAt bigquery.NullTimestamp `bigquery:"last_created_at"`
	LastID        int64                  `bigquery:"last_id"`
	LastKey       bigquery.NullString    `bigquery:"last_key"`
	RowsStaged    int64                  `bigquery:"rows_staged"`
	SourceRows    int64                  `bigquery:"source_rows"`
	BigQueryRows  int64                  `bigquery:"bigquery_rows"`
	Detail        string                 `bigquery:"detail"`
	Writer        string                 `bigquery:"writer"`
	Epoch         int64                  `bigquery:"epoch"`
}

func (r entryRow) entry() Entry {
	e := Entry{Table: r.Table, Date: r.Date, LastMaxID: r.LastMaxID, IsFinished: r.IsFinished,
		SyncedAt: r.SyncedAt, State: State(r.State), LastCreatedAt: r.LastCreatedAt.Timestamp, LastID: r.LastID,
		RowsStaged: r.RowsStaged, SourceRows: r.SourceRows, BigQueryRows: r.BigQueryRows,
		Detail: r.Detail, Writer: r.Writer, Epoch: r.Epoch}
	if r.LastKey.Valid {
		k := r.LastKey.StringVal
		e.LastKey = &k
	}
	return e
}

// Date returns the current entry of one date; ok is false when it has none.
func (s *Store) Date(ctx context.Context, table string, day civil.Date) (Entry, bool, error) {
	all, err := s.latest(ctx, table, fmt.Sprintf(" AND sync_date = DATE '%s' AND NOT %s", day.String(), isControl))
	if err != nil {
		return Entry{}, false, err
	}
	e, ok := all[day]
	return e, ok, nil
}

// CountSinceReopened counts the entries of one date in state since the
// date was last re-opened (distinct by synced_at, as CountState): what a
// re-opening resets, such as the full re-syncs of a date.
func (s *Store) CountSinceReopened(ctx context.Context, table string, day civil.Date, state State) (int64, error) {
	if !bq.TableNameRE.MatchString(table) {
		return 0, fmt.Errorf("read %s: bad table name %q", LogTable, table)
	}
	sql := fmt.Sprintf(`SELECT COUNT(DISTINCT IF(state = '%s', synced_at, NULL)) AS n
FROM (
  %s
  FROM %s WHERE table_name = '%s' AND sync_date = DATE '%s' AND NOT %s
)
WHERE %s`, state, epochCut(""), bq.Ref(s.project, s.dataset, LogTable), table, day.String(), isControl, epochWhere)
	c, err := bq.Row[struct {
		N int64 `bigquery:"n"`
	}](bq.RunQuery(ctx, s.client, sql))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", LogTable, err)
	}
	return c.N, nil
}

// CountState counts the entries of one date in state. It counts distinct
// entries (by synced_at), not rows: streaming de-duplication is best
// effort, so a row sent twice may still be stored twice.
func (s *Store) CountState(ctx context.Context, table string, day civil.Date, state State) (int64, error) {
	if !bq.TableNameRE.MatchString(table) {
		return 0, fmt.Errorf("read %s: bad table name %q", LogTable, table)
	}
	sql := fmt.Sprintf(`SELECT COUNT(DISTINCT synced_at) AS n FROM %s WHERE table_name = '%s' AND sync_date = DATE '%s' AND state = '%s'`,
		bq.Ref(s.project, s.dataset, LogTable), table, day.String(), state)
	c, err := bq.Row[struct {
		N int64 `bigquery:"n"`
	}](bq.RunQuery(ctx, s.client, sql))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", LogTable, err)
	}
	return c.N, nil
}

// epochSuffix keeps the insertId of rows of epoch 0 what it was before
// the column existed.
func epochSuffix(epoch int64) string {
	if epoch == 0 {
		return ""
	}
	return "\x00" + strconv.FormatInt(epoch, 10)
}

// keySuffix keeps the insertId of rows without a last_key what it was
// before the column existed.
func keySuffix(k *string) string {
	if k == nil {
		return ""
	}
	return "\x00key\x00" + *k
}

// addColumns adds the columns a log made by an older pgbq lacks (epoch,
// then last_key: an upgrade, which `planner migrate` runs once after each
// deploy): one schema update appending NULLABLE columns, as ALTER TABLE …
// ADD COLUMN would
// (https://cloud.google.com/bigquery/docs/managing-table-schemas#add_an_empty_column);
// the etag makes a concurrent migrate's update fail instead of racing.
func (s *Store) addColumns(ctx context.Context) error {
	meta, err := s.client.Dataset(s.dataset).Table(LogTable).Metadata(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", LogTable, err)
	}
	have := map[string]bool{}
	for _, f := range meta.Schema {
		have[f.Name] = true
	}
	schema := meta.Schema
	var added []string
	for _, f := range logSchema {
		if !have[f.Name] && (f.Name == "epoch" || f.Name == "last_key") {
			schema = append(schema, &bigquery.FieldSchema{Name: f.Name, Type: f.Type})
			added = append(added, f.Name)
		}
	}
	if len(added) == 0 {
		return nil
	}
	_, err = s.client.Dataset(s.dataset).Table(LogTable).Update(ctx, bigquery.TableMetadataToUpdate{Schema: schema}, meta.ETag)
	if err != nil {
		return fmt.Errorf("add columns %v to %s: %w", added, LogTable, err)
	}
	return nil
}
