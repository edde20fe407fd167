package loader

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/retry"
)

// Refusal says why a message for day of table must not be worked (it is
// then acked with the reason), or "" when it may. A date is refused
//   - after tomorrow: no row can have it yet, and a date recorded
//     "published" there is one the planner never looks at again;
//   - before SYNC_START_DATE when it is set: the operator keeps those
//     rows out;
//   - otherwise, before both the table's first row and the first date
//     recorded in sync_control (days whose rows were all deleted can
//     still be brought up to date).
//
// The last check is cached (see firstDate): PostgreSQL and sync_control
// are asked again only for a date before the earliest seen so far.
func (s *Service) Refusal(ctx context.Context, table string, day time.Time) (string, error) {
	syncer, ok := s.Syncers[table]
	if !ok {
		return fmt.Sprintf("table %q is not configured (this loader syncs %s)", table, s.tableNames()), nil
	}
	date := civil.DateOf(day)
	if last := LastDate(syncer.now()); day.After(last) {
		return fmt.Sprintf("date %s is after %s (today plus a day): no row can have it yet", date, last.Format(time.DateOnly)), nil
	}
	if !syncer.Start.IsZero() {
		if date.Before(syncer.Start) {
			return fmt.Sprintf("date %s is before SYNC_START_DATE %s", date, syncer.Start), nil
		}
		return "", nil
	}
	first, known, err := syncer.firstDate(ctx, date)
	if err != nil || !known || !date.Before(first) {
		return "", err
	}
	return fmt.Sprintf("date %s is before the table's first row and its first synced date (%s), and SYNC_START_DATE is not set", date, first), nil
}

// firstDate is the earliest date of the table's range that day is
// measured against: the cached one when day is not before it, else the
// table's first row's date when day is not before that (one PostgreSQL
// query), else the earlier of it and the table's first date in
// sync_control (one BigQuery query). known is false when the table has
// neither (any date may then be worked). Every answer is a date the range
// holds, and the range only grows earlier, so the cache keeps the
// earliest.
func (s *Syncer) firstDate(ctx context.Context, day civil.Date) (first civil.Date, known bool, err error) {
	s.firstMu.Lock()
	first = s.first
	s.firstMu.Unlock()
	if !first.IsZero() && !day.Before(first) {
		return first, true, nil
	}
	s.mu.RLock()
	src := s.Source
	s.mu.RUnlock()
	if src == nil { // a broken table: its sync says why
		return civil.Date{}, false, nil
	}
	var rowDay, synced civil.Date
	var hasRow, hasSynced bool
	err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
		var t time.Time
		t, hasRow, err = src.FirstDay(ctx)
		rowDay = civil.DateOf(t)
		return err
	})
	if err == nil && (!hasRow || day.Before(rowDay)) {
		err = retry.Do(ctx, func(ctx context.Context, _ int) (err error) {
			synced, hasSynced, err = s.State.FirstDate(ctx, s.Table)
			return err
		})
	}
	if err != nil {
		return civil.Date{}, false, fmt.Errorf("first date of %s: %w", s.Table, err)
	}
	switch {
	case hasRow && (!hasSynced || rowDay.Before(synced)):
		first = rowDay
	case hasSynced:
		first = synced
	default:
		return civil.Date{}, false, nil
	}
	s.firstMu.Lock()
	if s.first.IsZero() || first.Before(s.first) {
		s.first = first
	}
	s.firstMu.Unlock()
	return first, true, nil
}
