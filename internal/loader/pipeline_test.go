package loader

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pgbq/pgbq/internal/schema"
)

// fakeReader serves rows 1..total as chunks; no PostgreSQL needed to show
// the ordering rule of Extract's load stage.
type fakeReader struct{ total int }

func (f fakeReader) ReadChunk(_ context.Context, _, _ time.Time, after *schema.Key, limit int, b *schema.Batch) error {
	start := int64(1)
	if after != nil {
		start = after.ID + 1
	}
	n := min(int64(limit), int64(f.total)-start+1)
	b.Rows = int(max(n, 0))
	if n > 0 {
		b.First = schema.Key{ID: start}
		b.Last = schema.Key{ID: start + n - 1}
		b.MaxID = b.Last.ID
	}
	return nil
}

// nopEncoder writes nothing: these tests are about ordering.
type nopEncoder struct{}

func (nopEncoder) Encode(io.Writer, *schema.Batch) error { return nil }

// Loads run side by side and end in any order, but a chunk is committed
// only once it and every chunk before it have loaded: when chunk 1's load
// fails after chunk 2's landed, chunk 2 is never committed.
func TestExtractCommitsOnlyAFullyLoadedPrefix(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var committed []int
	concurrent, maxConcurrent := 0, 0
	firstStarted, secondLanded := make(chan struct{}), make(chan struct{})
	errCrash := errors.New("crash")
	load := func(ctx context.Context, c Chunk) error {
		mu.Lock()
		concurrent++
		maxConcurrent = max(maxConcurrent, concurrent)
		mu.Unlock()
		defer func() { mu.Lock(); concurrent--; mu.Unlock() }()
		switch c.N {
		case 1:
			close(firstStarted)
			select { // chunk 1 outlives chunk 2, then fails
			case <-secondLanded:
			case <-ctx.Done():
				return ctx.Err()
			}
			return errCrash
		case 2:
			select { // both in flight at once
			case <-firstStarted:
			case <-ctx.Done():
				return ctx.Err()
			}
			close(secondLanded)
			return nil
		}
		<-ctx.Done() // the others are still in flight when the crash comes
		return ctx.Err()
	}
	commit := func(_ context.Context, c Chunk) error {
		mu.Lock()
		committed = append(committed, c.N)
		mu.Unlock()
		return nil
	}
	_, err := Extract(context.Background(), fakeReader{total: 100}, nopEncoder{}, time.Time{}, time.Time{}, nil, 10,
		time.Now().Add(time.Minute), Stages{Load: load, Commit: commit, InFlight: 4})
	if !errors.Is(err, errCrash) {
		t.Fatalf("Extract error = %v, want the crash", err)
	}
	if len(committed) != 0 {
		t.Errorf("committed chunks %v; want none (chunk 1 never loaded)", committed)
	}
	if maxConcurrent < 2 || maxConcurrent > 4 {
		t.Errorf("loads in flight at once = %d, want 2..4", maxConcurrent)
	}
}

// With every load succeeding, commits come in chunk order and the day is
// done.
func TestExtractCommitsInOrder(t *testing.T) {
	t.Parallel()
	var committed []int
	load := func(_ context.Context, c Chunk) error {
		time.Sleep(time.Duration(10-c.N%10) * time.Millisecond) // later chunks tend to finish first
		return nil
	}
	commit := func(_ context.Context, c Chunk) error { committed = append(committed, c.N); return nil }
	done, err := Extract(context.Background(), fakeReader{total: 95}, nopEncoder{}, time.Time{}, time.Time{}, nil, 10,
		time.Now().Add(time.Minute), Stages{Load: load, Commit: commit, InFlight: 4})
	if err != nil || !done {
		t.Fatalf("Extract = %v, %v", done, err)
	}
	for i, n := range committed {
		if n != i+1 {
			t.Fatalf("commit order %v", committed)
		}
	}
	if len(committed) != 10 {
		t.Fatalf("committed %d chunks, want 10", len(committed))
	}
}

// bigEncoder writes size bytes a chunk, as a chunk of wide rows does.
type bigEncoder struct{ size int }

func (e bigEncoder) Encode(w io.Writer, _ *schema.Batch) error {
	_, err := w.Write(make([]byte, e.size))
	return err
}

// Encoded chunks of wide rows are held to BytesInFlight (and one chunk):
// with 30 MB chunks at most two exist between encoding and commit, where
// chunks of ordinary size still run InFlight loads and one encoded chunk
// waiting for them.
func TestExtractBoundsEncodedBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, want int
	}{{30 << 20, 2}, {1 << 20, 5}} {
		var mu sync.Mutex
		encoded, committed, most := 0, 0, 0
		enc := countingEncoder{inner: bigEncoder{tc.size}, after: func() {
			mu.Lock()
			encoded++
			most = max(most, encoded-committed)
			mu.Unlock()
		}}
		// A load ends only once encoding has gone as far ahead as the
		// bound lets it (or to the last chunk), so the bound is reached
		// however slow the machine; then it gives a bound that is too
		// loose a moment to show.
		load := func(ctx context.Context, _ Chunk) error {
			for {
				mu.Lock()
				ahead := encoded-committed >= tc.want || encoded == 10
				mu.Unlock()
				if ahead {
					break
				}
				select {
				case <-time.After(time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			time.Sleep(20 * time.Millisecond)
			return nil
		}
		commit := func(context.Context, Chunk) error { mu.Lock(); committed++; mu.Unlock(); return nil }
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound too tight never gets there
		done, err := Extract(ctx, fakeReader{total: 95}, enc, time.Time{}, time.Time{}, nil, 10,
			time.Now().Add(time.Minute), Stages{Load: load, Commit: commit, InFlight: 4})
		cancel()
		if err != nil || !done || committed != 10 {
			t.Fatalf("%d-byte chunks: Extract = %v, %v; %d committed", tc.size, done, err, committed)
		}
		if most != tc.want {
			t.Errorf("%d-byte chunks: at most %d encoded and not committed, want %d", tc.size, most, tc.want)
		}
	}
}

type countingEncoder struct {
	inner Encoder
	after func()
}

func (e countingEncoder) Encode(w io.Writer, b *schema.Batch) error {
	err := e.inner.Encode(w, b)
	e.after()
	return err
}
