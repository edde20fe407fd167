package planner

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/bq"
	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// DropFinishedStaging drops the staging tables of the table's finished
// dates. A loader drops a date's staging once the date is finished, but
// only within bq.CleanupBudget: one refused for BigQuery's rate of table
// metadata updates, or one that crashed after recording the finish, leaves
// the table here, where it would otherwise hold a day's rows until it
// expires. A table refused again is left for the next run; dropped counts
// the tables dropped, left those refused. Without p.Staging nothing is
// done.
//
// Only a date whose newest entry is finished loses its staging; a date
// not finished — re-opened, in progress, failed, quarantined — keeps it,
// since that table may be its new generation being staged. The state is
// read after the listing, so a table listed for a date is judged by a
// state at least as new as the table. A date re-opened after that read
// may still lose a staging table made for its new generation; that is
// harmless: the loader staging it meets bq.ErrStagingGone on its next
// load, check or publish and starts the date again from an empty table
// (the same as when another loader drops it: "staging dropped under it"
// in TestJobErrorsByReason, internal/loader/realbq_test.go), and no publish job of the old
// generation's id can be adopted into the new one.
func (p *Planner) DropFinishedStaging(ctx context.Context) (dropped, left int, err error) {
	if p.Staging == nil {
		return 0, 0, nil
	}
	days, err := p.Staging.StagingDays(ctx)
	if err != nil || len(days) == 0 {
		return 0, 0, err
	}
	latest, err := p.State.Latest(ctx, p.Table)
	if err != nil {
		return 0, 0, err
	}
	log := logging.From(ctx)
	for _, day := range days {
		date := civil.DateOf(day)
		if e, ok := latest[date]; !ok || !e.IsFinished || e.State != syncstate.StateFinished {
			continue
		}
		err := p.dropSoon(ctx, day)
		switch {
		case err == nil:
			dropped++
		case bq.LeftForLater(err) && ctx.Err() == nil:
			left++
			log.Info("staging table left for the next run", "table", p.Table, "sync_date", date.String(), "error", err.Error())
		default:
			return dropped, left, fmt.Errorf("drop staging of %s %s: %w", p.Table, date, err)
		}
	}
	return dropped, left, nil
}

// dropSoon drops the staging table of day within bq.CleanupBudget.
func (p *Planner) dropSoon(ctx context.Context, day time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, bq.CleanupBudget)
	defer cancel()
	return p.Staging.DropStaging(ctx, day)
}

// cleanStaging is DropFinishedStaging as a step of Run: it reports its
// counts in the run's log and never fails the run, whose plan is out.
func (p *Planner) cleanStaging(ctx context.Context) {
	log := logging.From(ctx)
	dropped, left, err := p.DropFinishedStaging(ctx)
	if err != nil {
		log.Warn("finished dates' staging not dropped", "table", p.Table, "staging_dropped", dropped, "staging_left", left, "error", err.Error())
		return
	}
	if dropped > 0 || left > 0 {
		log.Info("finished dates' staging dropped", "table", p.Table, "staging_dropped", dropped, "staging_left", left)
	}
}
