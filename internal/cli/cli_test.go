package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{flag.ErrHelp, ExitOK},
		{errors.New("boom"), ExitFailure},
		{Usagef("bad flag"), ExitUsage},
		{fmt.Errorf("verify t: %w", Mismatch(errors.New("differ"))), ExitMismatch},
		{errors.Join(errors.New("other"), Usage(errors.New("config"))), ExitUsage},
	}
	for _, tc := range cases {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Each "chunk staged" line moves the progress line on: chunk, rows so
// far, rows/s; other lines pass through unchanged.
func TestProgressFromChunkLines(t *testing.T) {
	t.Parallel()
	var term, logs bytes.Buffer
	p := &Progress{w: &term}
	logger := WithProgress(slog.New(slog.NewJSONHandler(&logs, nil)), p).With("table", "orders")
	logger.Info("chunk staged", "chunk", 1, "rows", 100)
	p.last = p.last.Add(-time.Second) // let the next update through
	logger.Info("chunk staged", "chunk", 2, "rows", 50)
	logger.Info("date processed")
	if !strings.Contains(term.String(), "orders chunk 2  rows=150  rows/s=") {
		t.Fatalf("progress line %q", term.String())
	}
	// With the day's rows known, the line also says how many are left.
	p.Expect(400)
	p.last = p.last.Add(-time.Second)
	logger.Info("chunk staged", "chunk", 3, "rows", 50)
	if !strings.Contains(term.String(), "orders chunk 3  rows=200  rows/s=") || !strings.HasSuffix(term.String(), "rows_left<=200") {
		t.Fatalf("progress line %q", term.String())
	}
	if strings.Count(logs.String(), "\n") != 4 {
		t.Fatalf("log lines not passed on: %s", logs.String())
	}
	// Not a terminal: the logger is left as it is.
	plain := slog.New(slog.NewTextHandler(io.Discard, nil))
	if WithProgress(plain, NewProgress(nil)) != plain {
		t.Fatal("a silent progress wrapped the logger")
	}
}
