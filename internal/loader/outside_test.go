package loader

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/pgsource"
	"github.com/pgbq/pgbq/internal/schema"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// A day's publish by load whose file holds rows of another day — which a
// correct reading never gives (the source fails a read whose rows fall
// outside the range asked for: pgsource.ErrOutsideRange) — is refused by
// BigQuery (rows outside the decorator's partition), and that refusal
// fails the date, naming the rows' instants: the day is not handed to the
// staging path, whose MERGE would publish the day's rows only and let it
// be recorded finished, as happened to Asia/Jerusalem's 2026-03-26. The
// MERGE itself publishes only its days' rows from staging.
func TestRowsOfAnotherDayFailTheDate(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	first := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	seedDays(t, r.pool, first, 2, 20, false)
	r.dropJSON() // a table with JSON columns is never published by load
	s := r.open(100)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := s.Warehouse.OpenStaging(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	// The rows of two days, read as one: a reading gone wrong.
	var b schema.Batch
	if err := s.Source.ReadChunk(ctx, first, first.AddDate(0, 0, 2), nil, 100, &b); err != nil {
		t.Fatal(err)
	}
	if b.Rows != 40 {
		t.Fatalf("read %d rows, want 40", b.Rows)
	}
	c := Chunk{N: 1, Rows: b.Rows, First: b.First, Last: b.Last, MaxID: b.MaxID, Earliest: b.Earliest, Latest: b.Latest,
		Data: new(bytes.Buffer), Final: true}
	handed := false
	if c.Layout, err = s.Encoder.EncodeLayout(c.Data, func() (*schema.Batch, error) {
		if handed {
			return nil, nil
		}
		handed = true
		return &b, nil
	}); err != nil {
		t.Fatal(err)
	}
	d := s.newDirect(slog.New(slog.DiscardHandler), first, st.Gen, func() (syncstate.Entry, error) { return syncstate.Entry{}, nil })
	var stopped error
	d.stop = func(cause error) { stopped = cause }
	d.add(ctx, c)
	if d.wait(ctx) {
		t.Fatal("a day holding rows of the next was published by load")
	}
	if stopped == nil || errors.Is(stopped, errDirectPublished) {
		t.Fatalf("the date goes on (stopped with %v): it would be published from staging without the other day's rows", stopped)
	}
	if !errors.Is(stopped, pgsource.ErrOutsideRange) || !strings.Contains(stopped.Error(), b.Latest.Format(time.RFC3339Nano)) {
		t.Fatalf("the failure does not name the rows' instants: %v", stopped)
	}
	counts := func(want ...int64) {
		t.Helper()
		for i, day := range []time.Time{first, first.AddDate(0, 0, 1)} {
			got, err := r.wh.CountDay(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != want[i] {
				t.Fatalf("%s holds %d rows, want %d", day.Format(time.DateOnly), got.Rows, want[i])
			}
		}
	}
	counts(0, 0)

	// The MERGE publishes from staging only the rows of its days, whatever
	// staging holds.
	if err := s.Warehouse.Load(ctx, first, st.Gen, c.First, c.Last, c.Rows, c.Data.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := s.Warehouse.PublishDays(ctx, []time.Time{first}, nil); err != nil {
		t.Fatal(err)
	}
	counts(20, 0)
}
