package planner

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/civil"

	"github.com/pgbq/pgbq/internal/logging"
	"github.com/pgbq/pgbq/internal/message"
	"github.com/pgbq/pgbq/internal/syncstate"
)

// Resynced is what Resync did with one date.
type Resynced struct {
	Date civil.Date
	Prev syncstate.State // the state it was in ("" when never synced)
	Done bool            // re-opened and published
	Skip string          // why not, when !Done
}

// resyncable are the states Resync re-opens: a date at rest. A date in
// any other state is being worked on or waiting for a loader, and the
// planner already handles it.
func resyncable(s syncstate.State) bool {
	return s == syncstate.StateFinished || s == syncstate.StateFailed || s == syncstate.StateQuarantined ||
		s == syncstate.StateMismatch
}

// Resync re-opens the finished, failed, mismatched and quarantined dates
// of [from, to] on purpose (a reopened entry carrying reason, which makes
// sync_control forget the date's history, quarantine and re-sync counts
// included) and publishes them. Each date starts over: its staging table
// is dropped before it is re-opened, so the next sync makes a new
// generation, whose load job ids can never adopt a job of the old one
// through 409, and no row staged before (one deleted at the source since)
// is published again. The loader then syncs each date from scratch; the
// partition replacement makes the new copy appear at once. It works even
// while the table is paused (the messages then wait for the resume).
func (p *Planner) Resync(ctx context.Context, from, to civil.Date, reason, writer string) ([]Resynced, error) {
	if to.Before(from) {
		return nil, fmt.Errorf("--to %s is before --from %s", to, from)
	}
	if p.Pub == nil {
		return nil, fmt.Errorf("resync needs a topic to publish to")
	}
	if p.Staging == nil {
		return nil, fmt.Errorf("resync needs the staging dataset")
	}
	current := map[civil.Date]syncstate.Entry{}
	if err := p.State.Scan(ctx, p.Table, from, to, func(e syncstate.Entry) error {
		current[e.Date] = e
		return nil
	}); err != nil {
		return nil, err
	}
	log := logging.From(ctx)
	var out []Resynced
	for d := from; !d.After(to); d = d.AddDays(1) {
		e, seen := current[d]
		st := e.State
		if e.IsFinished {
			st = syncstate.StateFinished
		}
		r := Resynced{Date: d, Prev: st}
		if !seen || !resyncable(st) {
			r.Skip = fmt.Sprintf("state %s: the planner plans it", st)
			out = append(out, r)
			continue
		}
		if err := p.Staging.DropStaging(ctx, d.In(time.UTC)); err != nil {
			return out, fmt.Errorf("re-open %s: %w", d, err)
		}
		// A re-opening starts the date's next epoch: what follows it wins
		// whatever the clocks of the machines that write it.
		reopen := syncstate.Entry{Table: p.Table, Date: d, State: syncstate.StateReopened, Writer: writer,
			LastMaxID: e.LastMaxID, Detail: "resync: " + reason, Epoch: e.Epoch + 1}
		if err := p.State.Append(ctx, reopen); err != nil {
			return out, fmt.Errorf("re-open %s: %w", d, err)
		}
		// The message goes out once loaders can read the re-opening:
		// read before it, the date still looks finished to them.
		if err := syncstate.Await(ctx, fmt.Sprintf("%s %s re-opened", p.Table, d), func(ctx context.Context) (bool, error) {
			seen := false
			err := p.State.Scan(ctx, p.Table, d, d, func(e syncstate.Entry) error {
				seen = e.Epoch >= reopen.Epoch
				return nil
			})
			return seen, err
		}); err != nil {
			return out, fmt.Errorf("re-open %s: %w", d, err)
		}
		if err := p.Pub.Publish(ctx, message.New(p.Table, d.In(time.UTC)).Encode()); err != nil {
			return out, fmt.Errorf("publish %s %s: %w", p.Table, d, err)
		}
		planned := syncstate.Entry{Table: p.Table, Date: d, State: syncstate.StatePlanned, Writer: writer, LastMaxID: e.LastMaxID,
			Epoch: reopen.Epoch}
		if err := p.State.Append(ctx, planned); err != nil {
			// The message is out; the next run may publish the date again,
			// which loaders absorb.
			log.Warn("planned date not recorded", "table", p.Table, "sync_date", d.String(), "error", err.Error())
		}
		log.Warn("date re-opened by an operator", "table", p.Table, "sync_date", d.String(), "previous_state", st.String(),
			"reason", reason, "writer", writer)
		r.Done = true
		out = append(out, r)
	}
	return out, nil
}

// SetPaused pauses or resumes the table, returning once sync_control
// reads so: a paused table is not planned, and loaders ack its messages
// without work. After a resume the next run
// publishes again the dates whose messages were dropped meanwhile.
func (p *Planner) SetPaused(ctx context.Context, paused bool, reason, writer string) error {
	st := syncstate.StateResumed
	if paused {
		st = syncstate.StatePaused
	}
	if err := p.State.Append(ctx, syncstate.Entry{Table: p.Table, Date: syncstate.ControlDate, State: st,
		Detail: reason, Writer: writer}); err != nil {
		return err
	}
	// Returns once planners and loaders read the new state (a planner
	// run right after a resume plans the table).
	return syncstate.Await(ctx, fmt.Sprintf("%s paused=%t", p.Table, paused), func(ctx context.Context) (bool, error) {
		now, _, err := p.State.Paused(ctx, p.Table)
		return now == paused, err
	})
}
