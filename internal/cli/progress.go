package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Progress writes one overwriting status line to a terminal: what is
// being worked on, rows so far and rows per second. It writes nothing
// when its writer is not a terminal, so logs and pipes stay clean.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
	total int64 // rows expected in all, when known (Expect)
}

// NewProgress returns a progress line on f when f is a terminal, and a
// silent one otherwise.
func NewProgress(f *os.File) *Progress {
	if f == nil {
		return &Progress{}
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &Progress{}
	}
	return &Progress{w: f, start: time.Now()}
}

// Active reports whether the line is shown (its writer is a terminal):
// callers skip work, such as counting, that only feeds it.
func (p *Progress) Active() bool { return p != nil && p.w != nil }

// Expect adds n rows to those the work is expected to reach, so the line
// also shows the rows left.
func (p *Progress) Expect(n int64) {
	if !p.Active() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += n
}

// Update shows what and rows so far, at most five times a second.
func (p *Progress) Update(what string, rows int64) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	rate := float64(rows) / max(now.Sub(p.start).Seconds(), 0.001)
	fmt.Fprintf(p.w, "\r\033[K%s  rows=%d  rows/s=%.0f", what, rows, rate)
	if p.total > 0 {
		// Rows already staged by an earlier run are not staged again, so
		// this is at most what is left.
		fmt.Fprintf(p.w, "  rows_left<=%d", max(p.total-rows, 0))
	}
}

// Done ends the line.
func (p *Progress) Done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\033[K")
}

// progressHandler passes records on and shows the "chunk staged" ones
// (chunk, rows) on a progress line.
type progressHandler struct {
	slog.Handler
	p     *Progress
	rows  *atomic.Int64
	table string
}

// WithProgress returns logger, which also shows each staged chunk (the
// loader's "chunk staged" line: its number, the rows so far, rows/s) on
// p. With a silent p it returns logger unchanged.
func WithProgress(logger *slog.Logger, p *Progress) *slog.Logger {
	if p == nil || p.w == nil {
		return logger
	}
	return slog.New(progressHandler{Handler: logger.Handler(), p: p, rows: new(atomic.Int64)})
}

func (h progressHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "chunk staged" {
		var chunk, rows int64
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "chunk":
				chunk = a.Value.Int64()
			case "rows":
				rows = a.Value.Int64()
			}
			return true
		})
		h.p.Update(fmt.Sprintf("%schunk %d", h.table, chunk), h.rows.Add(rows))
	}
	return h.Handler.Handle(ctx, r)
}

func (h progressHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := h
	c.Handler = h.Handler.WithAttrs(attrs)
	for _, a := range attrs {
		switch a.Key {
		case "table", "sync_date":
			c.table += a.Value.String() + " "
		}
	}
	return c
}

func (h progressHandler) WithGroup(name string) slog.Handler {
	c := h
	c.Handler = h.Handler.WithGroup(name)
	return c
}
