package bqfidelity

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"
)

// Streamed rows become visible to queries after a delay.
// https://cloud.google.com/bigquery/docs/streaming-data-into-bigquery#dataavailability
// — "Streamed data is available for real-time analysis within a few
// seconds of the first streaming insertion into a table", not at once.
// Modelled with Options.StreamingVisibilityDelay (off by default): an
// accepted insertAll is answered at once and its rows reach the emulator,
// where queries see them, only after the delay. The emulator's own
// refusal of a row (a bad value) then comes too late to be answered; it is
// logged and counted (Stats.StreamRowsRefusedLate). Rows still waiting
// when the proxy closes are written then. "A few seconds" is no fixed
// delay: with Options.StreamingVisibilityJitter each insertAll waits a
// random part more, so rows streamed later may be seen earlier (the page
// promises no order). HiddenRows tells a test what is still invisible.

// streamLater writes req's rows to table after the visibility delay.
func (p *Proxy) streamLater(project, dataset, table string, req map[string]any) {
	key := project + "." + dataset + "." + table
	rows, _ := req["rows"].([]any)
	p.stream.mu.Lock()
	p.stream.hidden[key] += len(rows)
	p.stream.mu.Unlock()
	delay := p.opt.StreamingVisibilityDelay
	if j := p.opt.StreamingVisibilityJitter; j > 0 {
		delay += rand.N(j)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.stream.mu.Lock()
			p.stream.hidden[key] -= len(rows)
			p.stream.mu.Unlock()
		}()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.closeCtx.Done():
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		path := "projects/" + project + "/datasets/" + dataset + "/tables/" + table + "/insertAll"
		res, err := p.emuDo(ctx, http.MethodPost, path, req)
		refused := 0
		if err != nil {
			refused = len(rows)
		} else if ie, ok := res["insertErrors"].([]any); ok {
			refused = len(ie)
		}
		if refused > 0 {
			p.stats.add(func(s *Stats) { s.StreamRowsRefusedLate += refused })
			if p.opt.Logf != nil {
				p.opt.Logf("bqfidelity: %d streamed rows of %s.%s refused after the visibility delay: %v", refused, dataset, table, err)
			}
		}
	}()
}

// HiddenRows is how many rows streamed into the table are accepted but not
// yet visible to queries.
func (p *Proxy) HiddenRows(project, dataset, table string) int {
	p.stream.mu.Lock()
	defer p.stream.mu.Unlock()
	return p.stream.hidden[project+"."+dataset+"."+table]
}
