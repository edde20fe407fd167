package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
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
