package syncstate

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"
)

// StateTracked is the state of a table's tracking rows, on TrackingDate:
// how far the planner has followed the table's changes (the watermark)
// and where its fingerprint sweep goes on. Only tables with an updated-at
// column have them.
const StateTracked State = "tracked"

// TrackingDate is the sync_date of a table's tracking rows. Like
// ControlDate it can be a source row's date too; tracking rows are told
// apart by their state (isControl), and they are a sequence of their own
// beside pause and resume, which live on ControlDate.
var TrackingDate = civil.Date{Year: 1, Month: 1, Day: 2}

// Tracking is what a table's newest tracking row says.
type Tracking struct {
	// Watermark is the newest updated-at value the planner has read; the
	// next run looks for rows changed after Watermark minus the grace.
	Watermark time.Time
	// SweepNext is the first date of the next run's sweep window; zero
	// means the start of the history.
	SweepNext civil.Date
}

// unixDay is the date the sweep position counts days from.
var unixDay = civil.Date{Year: 1970, Month: 1, Day: 1}

// Tracking returns the table's newest tracking row; ok is false when it
// has none (changes never followed yet).
func (s *Store) Tracking(ctx context.Context, table string) (Tracking, bool, error) {
	all, err := s.latest(ctx, table, fmt.Sprintf(" AND sync_date = DATE '%s' AND state = '%s'", TrackingDate, StateTracked))
	if err != nil {
		return Tracking{}, false, err
	}
	e, ok := all[TrackingDate]
	if !ok {
		return Tracking{}, false, nil
	}
	t := Tracking{Watermark: e.LastCreatedAt}
	if e.LastMaxID != 0 {
		// last_max_id holds the sweep's next date as days since 1970-01-01,
		// plus one so that 0 stays "unset".
		t.SweepNext = unixDay.AddDays(int(e.LastMaxID - 1))
	}
	return t, true, nil
}

// SetTracking appends a tracking row for table. Running it twice, or two
// planners at once, is harmless: the newest row wins, and a watermark
// that goes back only makes a later run look at some changes again.
func (s *Store) SetTracking(ctx context.Context, table string, t Tracking, writer string) error {
	e := Entry{Table: table, Date: TrackingDate, State: StateTracked, Writer: writer, LastCreatedAt: t.Watermark.UTC(),
		Detail: fmt.Sprintf("watermark %s; sweep next from %s", t.Watermark.UTC().Format(time.RFC3339Nano), t.SweepNext)}
	if !t.SweepNext.IsZero() {
		e.LastMaxID = int64(t.SweepNext.DaysSince(unixDay)) + 1
	}
	if e.LastCreatedAt.IsZero() {
		// A table with no change read yet: the row still carries the
		// sweep position; last_created_at then holds the epoch's start.
		e.LastCreatedAt = time.Unix(0, 0).UTC()
	}
	return s.Append(ctx, e)
}
