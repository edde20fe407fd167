package loader

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/testenv"
)

// "char" ” arrives as the empty string (PostgreSQL stores it as a NUL
// byte), and a "char" holding the first byte of a two-byte letter — not
// UTF-8 — fails its date with an error naming the table, the column and
// the row's id, while the other dates sync.
func TestCharEmptyAndNotUTF8(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.exec(`CREATE TABLE chars (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, c "char", t text);
CREATE INDEX ON chars (created_at, id);
INSERT INTO chars VALUES (1, '2024-05-01 10:00+00', '', ''), (2, '2024-05-01 11:00+00', 'a', 'x'), (3, '2024-05-01 12:00+00', NULL, NULL),
	(10, '2024-05-02 10:00+00', 'é', 'é'), (11, '2024-05-02 11:00+00', 'b', 'y')`)
	s := r.openSpec(pgsource.TableSpec{Table: "chars", IDColumn: "id", TimestampColumn: "created_at"}, "chars", 100)
	good, bad := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	if got := r.syncAll(s, good); got != Finished {
		t.Fatalf("outcome %v", got)
	}
	got := map[int64][2]any{}
	for _, row := range r.bqRows("SELECT id, c, t FROM " + r.wh.DestRef()) {
		got[row[0].(int64)] = [2]any{row[1], row[2]}
	}
	want := map[int64][2]any{1: {"", ""}, 2: {"a", "x"}, 3: {nil, nil}}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("id %d: BigQuery holds %q, want %q", id, got[id], w)
		}
	}
	r.wantBadBytes(s, bad, `"public"."chars"`, `column "c"`, "row with id 10")
}

// In a SQL_ASCII database text is bytes in no encoding: a value that is
// not UTF-8 fails its date naming the table, column and id.
func TestSQLASCIIText(t *testing.T) {
	t.Parallel()
	dsn, pool := testenv.PGEncoded(t, "SQL_ASCII")
	r := &rig{t: t, pool: pool, dsn: dsn, bq: testenv.BigQuery(t)}
	r.exec(`CREATE TABLE notes (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text, tags text[]);
CREATE INDEX ON notes (created_at, id);
INSERT INTO notes VALUES (1, '2024-05-01 10:00+00', 'plain ascii', '{a,b}'),
	(20, '2024-05-02 10:00+00', 'ok', '{a}'), (21, '2024-05-02 11:00+00', E'caf\xe9', '{a}'),
	(30, '2024-05-03 10:00+00', 'ok', ARRAY[E'\xff'])`)
	s := r.openSpec(pgsource.TableSpec{Table: "notes", IDColumn: "id", TimestampColumn: "created_at"}, "notes", 100)
	if got := r.syncAll(s, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)); got != Finished {
		t.Fatalf("outcome %v", got)
	}
	r.check(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	r.wantBadBytes(s, time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC), `"public"."notes"`, `column "body"`, "row with id 21")
	r.wantBadBytes(s, time.Date(2024, 5, 3, 0, 0, 0, 0, time.UTC), `"public"."notes"`, `column "tags"`, "row with id 30")
}

// wantBadBytes syncs day and wants it to fail for bytes that are not
// UTF-8, with an error that says where.
func (r *rig) wantBadBytes(s *Syncer, day time.Time, where ...string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s.Sync(ctx, day, time.Now().Add(time.Hour))
	if err == nil {
		r.t.Fatalf("%s synced; want it refused for text that is not UTF-8", day.Format(time.DateOnly))
	}
	for _, w := range append(where, "not valid UTF-8") {
		if !strings.Contains(err.Error(), w) {
			r.t.Fatalf("error %q does not say %q", err, w)
		}
	}
}
