package bqfidelity

import (
	"context"
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
// when the proxy closes are written then.

// streamLater writes req's rows to table after the visibility delay.
func (p *Proxy) streamLater(project, dataset, table string, req map[string]any) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTimer(p.opt.StreamingVisibilityDelay)
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
			rows, _ := req["rows"].([]any)
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
