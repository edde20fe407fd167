package loader

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgbq/pgbq/internal/schema"
)

// fakeReader serves rows 1..total as pieces; no PostgreSQL needed to show
// the ordering rule of Extract's load stage. With maxBytes, each row
// weighs rowBytes and a piece stops, Truncated, as PostgreSQL's reader
// does at its cap.
type fakeReader struct{ total, rowBytes, maxBytes int }

func (f fakeReader) ReadPiece(_ context.Context, _, _ time.Time, after *schema.Key, limit, used int, b *schema.Batch) error {
	b.Reset(0)
	start := int64(1)
	if after != nil {
		start = after.ID + 1
	}
	n := min(int64(limit), int64(f.total)-start+1)
	if f.maxBytes > 0 {
		room := int64(max(f.maxBytes-used, 0)+f.rowBytes-1) / int64(f.rowBytes) // rows until the cap is reached
		if room < n {
			n, b.Truncated = max(room, 1), true
		}
	}
	b.Rows = int(max(n, 0))
	b.Bytes = b.Rows * f.rowBytes
	if n > 0 {
		b.First = schema.Key{ID: start}
		b.Last = schema.Key{ID: start + n - 1}
		b.MaxID = b.Last.ID
	}
	return nil
}

// drain takes the batches of one file.
func drain(next func() (*schema.Batch, error)) error {
	for {
		b, err := next()
		if b == nil || err != nil {
			return err
		}
	}
}

// nopEncoder writes nothing: these tests are about ordering.
type nopEncoder struct{}

func (nopEncoder) EncodeGroups(_ io.Writer, next func() (*schema.Batch, error)) error {
	return drain(next)
}

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

func (e bigEncoder) EncodeGroups(w io.Writer, next func() (*schema.Batch, error)) error {
	if err := drain(next); err != nil {
		return err
	}
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

func (e countingEncoder) EncodeGroups(w io.Writer, next func() (*schema.Batch, error)) error {
	err := e.inner.EncodeGroups(w, next)
	e.after()
	return err
}

// pieceEncoder records the row groups of each file; its first row group
// ends only once the reader has gone on to the next piece.
type pieceEncoder struct {
	mu     *sync.Mutex
	groups *[][2]int64 // first and last id of each row group, in order
	reads  *int        // pieces read so far
}

func (e pieceEncoder) EncodeGroups(_ io.Writer, next func() (*schema.Batch, error)) error {
	for {
		b, err := next()
		if b == nil || err != nil {
			return err
		}
		e.mu.Lock()
		*e.groups = append(*e.groups, [2]int64{b.First.ID, b.Last.ID})
		first := len(*e.groups) == 1
		e.mu.Unlock()
		for give := time.Now().Add(20 * time.Second); first; { // the next piece is read while this one is encoded
			if time.Now().After(give) {
				return errors.New("the second piece was not read while the first was encoded")
			}
			time.Sleep(time.Millisecond)
			e.mu.Lock()
			first = *e.reads < 2
			e.mu.Unlock()
		}
	}
}

type countingReader struct {
	fakeReader
	mu    *sync.Mutex
	reads *int
}

func (r countingReader) ReadPiece(ctx context.Context, from, to time.Time, after *schema.Key, limit, used int, b *schema.Batch) error {
	err := r.fakeReader.ReadPiece(ctx, from, to, after, limit, used, b)
	r.mu.Lock()
	*r.reads++
	r.mu.Unlock()
	return err
}

// A chunk is read in pieces of PieceRows, each a row group, the next read
// while one is encoded (a day of one chunk would otherwise read, then
// encode); a chunk's bytes are capped across its pieces, so a chunk may
// end early, Truncated, and the next one go on from there. Every row is
// in exactly one row group of one committed chunk, in order.
func TestExtractReadsPiecesWhileEncoding(t *testing.T) {
	t.Parallel()
	const total, chunk = 3*PieceRows + 500, 2*PieceRows + 100
	for _, tc := range []struct {
		name   string
		reader fakeReader
		chunks [][2]int64 // first and last id of each committed chunk
	}{
		{"rows", fakeReader{total: total}, [][2]int64{{1, chunk}, {chunk + 1, total}}},
		// The day ends with a full chunk: an empty read ends it.
		{"whole chunks", fakeReader{total: 2 * chunk}, [][2]int64{{1, chunk}, {chunk + 1, 2 * chunk}}},
		// 10 bytes a row, capped at 1.5 pieces' worth: each chunk ends
		// halfway through its second piece.
		{"bytes", fakeReader{total: total, rowBytes: 10, maxBytes: 15 * PieceRows},
			[][2]int64{{1, 3 * PieceRows / 2}, {3*PieceRows/2 + 1, 3 * PieceRows}, {3*PieceRows + 1, total}}},
	} {
		var mu sync.Mutex
		var groups [][2]int64
		var reads int
		var committed [][2]int64
		commit := func(_ context.Context, c Chunk) error {
			if c.Rows != int(c.Last.ID-c.First.ID+1) || c.MaxID != c.Last.ID {
				t.Errorf("%s: chunk %d: %d rows from %d to %d, max id %d", tc.name, c.N, c.Rows, c.First.ID, c.Last.ID, c.MaxID)
			}
			committed = append(committed, [2]int64{c.First.ID, c.Last.ID})
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		done, err := Extract(ctx, countingReader{tc.reader, &mu, &reads}, pieceEncoder{&mu, &groups, &reads},
			time.Time{}, time.Time{}, nil, chunk, time.Now().Add(time.Minute),
			Stages{Load: func(context.Context, Chunk) error { return nil }, Commit: commit, InFlight: 2})
		cancel()
		if err != nil || !done {
			t.Fatalf("%s: Extract = %v, %v", tc.name, done, err)
		}
		if diff := cmp.Diff(tc.chunks, committed); diff != "" {
			t.Errorf("%s: committed chunks (-want +got):\n%s", tc.name, diff)
		}
		next := int64(1)
		for _, g := range groups {
			if g[0] != next || g[1]-g[0]+1 > PieceRows {
				t.Fatalf("%s: row groups %v: not consecutive pieces of at most %d rows", tc.name, groups, PieceRows)
			}
			next = g[1] + 1
		}
		if want := int64(tc.reader.total); next != want+1 {
			t.Errorf("%s: row groups end at id %d, want %d", tc.name, next-1, want)
		}
	}
}

// With Encoded set, reading and encoding reach the day's end while no load
// has ended (as while BigQuery's per-table rate holds the loads back): the
// loads here wait until Encoded has seen the day's last chunk, which
// without eager encoding would never come (InFlight loads block the
// rest). Encoded sees every chunk once, in order, the last one Final, and
// loads still run at most InFlight at once and commit in order.
func TestEagerEncodingReachesTheDayEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	end := make(chan struct{})
	var mu sync.Mutex
	var seen, committed []int
	running, maxRunning := 0, 0
	load := func(ctx context.Context, c Chunk) error {
		mu.Lock()
		running++
		maxRunning = max(maxRunning, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		select {
		case <-end:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	encoded := func(c Chunk) bool {
		seen = append(seen, c.N)
		if c.Final {
			close(end)
		}
		return true
	}
	commit := func(_ context.Context, c Chunk) error { committed = append(committed, c.N); return nil }
	done, err := Extract(ctx, fakeReader{total: 95}, nopEncoder{}, time.Time{}, time.Time{}, nil, 10,
		time.Now().Add(time.Minute), Stages{Load: load, Commit: commit, InFlight: 2, Encoded: encoded})
	if err != nil || !done {
		t.Fatalf("Extract = %v, %v; want the day done (no load ends before the day's last chunk is encoded)", done, err)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !cmp.Equal(seen, want) || !cmp.Equal(committed, want) {
		t.Fatalf("Encoded saw %v, committed %v; want both %v", seen, committed, want)
	}
	if maxRunning > 2 {
		t.Fatalf("%d loads at once, InFlight 2", maxRunning)
	}
}

// Once Encoded returns false, it is not called again and reading goes back
// to waiting for loads: with every load stuck, reading stops a few chunks
// on instead of running to the day's end.
func TestEncodedFalseStopsReadingAhead(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	reads := 0
	var seen []int
	load := func(ctx context.Context, _ Chunk) error { <-ctx.Done(); return ctx.Err() }
	encoded := func(c Chunk) bool { seen = append(seen, c.N); return c.N < 2 }
	_, err := Extract(ctx, countingReader{fakeReader{total: 1000}, &mu, &reads}, nopEncoder{}, time.Time{}, time.Time{}, nil, 10,
		time.Now().Add(time.Minute), Stages{Load: load, InFlight: 2, Encoded: encoded})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Extract with every load stuck: %v, want the deadline", err)
	}
	if !cmp.Equal(seen, []int{1, 2}) {
		t.Fatalf("Encoded saw chunks %v, want [1 2]", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := reads; n > 8 {
		t.Fatalf("%d chunks read with every load stuck after reading ahead stopped at chunk 2; want a few", n)
	}
}
