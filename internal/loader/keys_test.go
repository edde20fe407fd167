package loader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/civil"
	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
	"github.com/pgbq/pgbq/internal/testenv"
)

// keyedKind is a key column type of the tests below and a generator of
// its values, as text PostgreSQL casts to the column's type.
type keyedKind struct {
	name, ddl string
	gen       func(r *rand.Rand) string
	// edges are values every run includes.
	edges []string
}

// textRunes mixes letters whose order in "C" differs from en_US (B < a in
// "C", a < B in en_US), accents, CJK, an emoji (4 bytes in UTF-8, beyond
// the BMP), punctuation and a control character.
var textRunes = []rune("aBbZz_- .é€ßÄ中😀\u0001~0")

var keyedKinds = []keyedKind{
	{name: "int", ddl: "bigint", edges: []string{"-9223372036854775808", "9223372036854775807", "0"}, gen: func(r *rand.Rand) string { return fmt.Sprint(r.Int64N(1<<62) - 1<<61) }},
	{name: "text", ddl: `text COLLATE "en-US-x-icu"`, edges: []string{"", "a", "B", "'", `\`, "a'); DROP TABLE keyed; --"}, gen: func(r *rand.Rand) string {
		var b strings.Builder
		for range r.IntN(6) {
			b.WriteRune(textRunes[r.IntN(len(textRunes))])
		}
		return b.String()
	}},
	{name: "uuid", ddl: "uuid", edges: []string{"00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"}, gen: func(r *rand.Rand) string {
		u := fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
		u = u[:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:]
		if r.IntN(2) == 0 {
			u = strings.ToUpper(u) // PostgreSQL reads either case; the canonical text is lowercase
		}
		return u
	}},
	{name: "numeric", ddl: "numeric(38,9)", edges: []string{"1.50", "0", "-0.000000001", "99999999999999999999999999999.999999999",
		"-99999999999999999999999999999.999999999", "10", "100.000"}, gen: func(r *rand.Rand) string {
		// Trailing zeros (1.50), whole numbers, up to 29 digits before
		// the point and 9 after.
		whole := fmt.Sprint(r.Int64N(1e18))
		if r.IntN(3) == 0 {
			whole += fmt.Sprintf("%011d", r.Int64N(1e11))
		}
		frac := fmt.Sprintf("%09d", r.Int64N(1e9))[:r.IntN(10)]
		v := whole
		if frac != "" || r.IntN(2) == 0 {
			v += "." + frac + strings.Repeat("0", r.IntN(3))
		}
		if r.IntN(2) == 0 {
			v = "-" + v
		}
		return strings.TrimSuffix(v, ".")
	}},
}

// seedKeyed creates table keyed (key k of kind, a payload, created_at)
// with its (created_at, k) index in the column's own collation and fills
// day with n rows of distinct random keys over few distinct instants, so
// that many rows share a timestamp and chunks end inside a timestamp:
// there the key order decides the position.
func seedKeyed(t *testing.T, r *rig, kind keyedKind, day time.Time, n int, rnd *rand.Rand) {
	t.Helper()
	testenv.Exec(t, r.pool, fmt.Sprintf(`CREATE TABLE keyed (k %s PRIMARY KEY, payload text, created_at timestamptz NOT NULL)`, kind.ddl),
		`CREATE INDEX keyed_created_at_k ON keyed (created_at, k)`)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < n; {
		at := day.Add(time.Duration(rnd.IntN(12)) * 2 * time.Hour)
		key := kind.gen(rnd)
		if i < len(kind.edges) {
			key = kind.edges[i]
		}
		tag, err := r.pool.Exec(ctx, `INSERT INTO keyed VALUES ($1::text::`+strings.Fields(kind.ddl)[0]+`, $2, $3) ON CONFLICT DO NOTHING`,
			key, fmt.Sprint("row ", i), at)
		if err != nil {
			t.Fatal(err)
		}
		i += int(tag.RowsAffected())
	}
	testenv.Exec(t, r.pool, `ANALYZE keyed`)
}

func openKeyed(r *rig, chunk int) *Syncer {
	return r.openSpec(pgsource.TableSpec{Table: "keyed", IDColumn: "k", TimestampColumn: "created_at"}, "keyed", chunk)
}

// sameKeys asserts that BigQuery holds exactly the source's keys of day,
// each once, in the same (timestamp, key) order: the canonical texts read
// in PostgreSQL's order and in BigQuery's (the order positions are
// compared in on both sides) are the same list, and the fingerprints of
// both sides and of the loader's own hash agree.
func sameKeys(t *testing.T, r *rig, day time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	order, canon, bqCanon := `k`, `k::text`, "k"
	switch r.src.Table().KeyKind {
	case schema.KeyInt:
		bqCanon = "CAST(k AS STRING)"
	case schema.KeyText:
		order = `k COLLATE "C"`
	case schema.KeyNumeric:
		canon = `trim_scale(k)::text`
		bqCanon = `REGEXP_REPLACE(CAST(k AS STRING), r'(\.[0-9]*[1-9])0+$|\.0+$', r'\1')`
	}
	rows, err := r.pool.Query(ctx, fmt.Sprintf(`SELECT %s AS c FROM keyed ORDER BY created_at, %s`, canon, order))
	if err != nil {
		t.Fatal(err)
	}
	var pg []string
	var hash int64
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		pg = append(pg, s)
		hash += schema.KeyHash(s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var bqKeys []string
	for _, row := range r.bqRows(fmt.Sprintf("SELECT %s AS c FROM %s ORDER BY created_at, k", bqCanon, r.wh.DestRef())) {
		bqKeys = append(bqKeys, row[0].(string))
	}
	if diff := cmp.Diff(pg, bqKeys); diff != "" {
		t.Fatalf("keys in (timestamp, key) order, PostgreSQL -> BigQuery (-pg +bq):\n%s", diff)
	}
	src, err := r.src.DayFingerprints(ctx, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := r.wh.DayFingerprints(ctx, day, day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	d := civil.DateOf(day)
	want := schema.DayFingerprint{Rows: int64(len(pg)), DistinctKeys: int64(len(pg)), Hash: hash}
	if src[d] != want || dst[d] != want {
		t.Fatalf("fingerprints of %s: PostgreSQL %s, BigQuery %s, computed here %s", d, src[d], dst[d], want)
	}
}

// A table keyed by any unique key type syncs each row exactly once, also
// when its loader is killed in the middle of the day (after the second
// load or the second checkpoint, with chunks ending inside runs of rows
// sharing a timestamp) or after the publish, and is run again.
func TestKeyedTablesSyncExactlyOnce(t *testing.T) {
	t.Parallel()
	const chunk, n = 40, 300
	for _, kind := range keyedKinds {
		for _, point := range []string{"loaded", "checkpointed", "published"} {
			t.Run(kind.name+"/"+point, func(t *testing.T) {
				t.Parallel()
				seed := uint64(time.Now().UnixNano())
				t.Logf("seed %d", seed)
				rnd := rand.New(rand.NewPCG(seed, 26))
				r := newRig(t)
				day := time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)
				seedKeyed(t, r, kind, day, n, rnd)
				s := openKeyed(r, chunk)
				nth := 1
				if point != "published" {
					// Mid-day on the staging path (a load landed and not
					// checkpointed, or checkpointed); the crash after the
					// publish takes whichever path the day takes.
					setNoDirect(s, true)
					nth = 2
				}
				r.crash(s, day, point, nth)
				if got := r.syncAll(s, day); got != Finished {
					t.Fatalf("outcome after resume = %v, want finished", got)
				}
				sameKeys(t, r, day)
				if loaded := rowsLoaded(s); loaded > n+LoadsInFlight*chunk {
					t.Fatalf("loaded %d rows for a %d-row day", loaded, n)
				}
			})
		}
	}
}

// Every key kind's position survives sync_control: a checkpoint written
// with a random position (canonical text from PostgreSQL) reads back as
// the same position, integer keys in last_id and others in last_key.
func TestPositionRoundTrip(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 4))
	_, pool := testenv.PG(t)
	b := testenv.BigQuery(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := syncstate.New(b.Client, b.Project, b.Dataset)
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]schema.KeyKind{"int": schema.KeyInt, "text": schema.KeyText, "uuid": schema.KeyUUID, "numeric": schema.KeyNumeric}
	for _, kind := range keyedKinds {
		var entries []syncstate.Entry
		var want []schema.Key
		first := civil.Date{Year: 2024, Month: 1, Day: 1}
		for i := range 40 {
			v := kind.gen(rnd)
			if i < len(kind.edges) {
				v = kind.edges[i]
			}
			typ := strings.Fields(kind.ddl)[0]
			canon := "$1::text::" + typ + "::text"
			if kind.name == "numeric" {
				canon = "trim_scale($1::text::numeric(38,9))::text"
			}
			var text string
			if err := pool.QueryRow(ctx, "SELECT "+canon, v).Scan(&text); err != nil {
				t.Fatal(err)
			}
			k := schema.Key{Time: time.Date(2024, 1, 1, 0, 0, 0, rnd.IntN(1e6)*1000, time.UTC).AddDate(0, 0, i), Kind: kinds[kind.name]}
			if k.Kind == schema.KeyInt {
				fmt.Sscan(text, &k.ID)
			} else {
				k.Text = text
			}
			want = append(want, k)
			entries = append(entries, syncstate.Entry{Table: "pos_" + kind.name, Date: first.AddDays(i), State: syncstate.StateInProgress,
				LastCreatedAt: k.Time, LastID: k.ID, LastKey: lastKey(k), RowsStaged: 1, Writer: "test"})
		}
		if err := st.Append(ctx, entries...); err != nil {
			t.Fatal(err)
		}
		got, err := st.Latest(ctx, "pos_"+kind.name)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			k, ok := checkpointKey(got[first.AddDays(i)], w.Kind)
			if !ok || !k.Time.Equal(w.Time) || k.ID != w.ID || k.Text != w.Text || k.Kind != w.Kind {
				t.Errorf("%s: position %+v read back as %+v (ok %v)", kind.name, w, k, ok)
			}
		}
	}
}
