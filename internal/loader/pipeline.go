package loader

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
)

// ChunkReader reads one chunk of the rows with timestamps in [from, to) in
// keyset order after a position (nil: from the start). Reading the same
// position twice gives the same rows, so a failed read can be retried.
type ChunkReader interface {
	ReadChunk(ctx context.Context, from, to time.Time, after *schema.Key, limit int, b *schema.Batch) error
}

// Chunk is one encoded chunk on its way to BigQuery.
type Chunk struct {
	N           int // 1-based within this run
	Rows        int
	First, Last schema.Key
	MaxID       int64
	Data        *bytes.Buffer // Parquet; empty when Rows is 0
	// Final: the day's rows so far end with this chunk.
	Final  bool
	Read   time.Duration
	Encode time.Duration
}

var (
	batchPool = sync.Pool{New: func() any { return new(schema.Batch) }}
	bufPool   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// Extract reads and encodes the chunks of [from, to) after pos and hands
// each to load, in order. Three stages run at once — reading chunk n+2, encoding
// n+1, loading n — joined by channels of one, so at most two batches and
// two encoded chunks are in memory (encoding n+2 waits for n's load: loads
// take longer than encoding, and wide rows make every file count). It stops after a short chunk (done:
// every row of the day so far has been handed over) or when no new read
// may start because deadline has passed.
func Extract(ctx context.Context, src ChunkReader, enc *parquetenc.Encoder, from, to time.Time, pos *schema.Key,
	chunkSize int, deadline time.Time, load func(context.Context, Chunk) error) (done bool, err error) {
	type read struct {
		n     int
		batch *schema.Batch
		took  time.Duration
	}
	freeBatches := make(chan *schema.Batch, 2)
	freeBufs := make(chan *bytes.Buffer, 2)
	for range 2 {
		freeBatches <- batchPool.Get().(*schema.Batch)
	}
	for range 2 {
		freeBufs <- bufPool.Get().(*bytes.Buffer)
	}
	defer func() {
		// Grown batches and buffers serve the next call (the next date)
		// instead of growing again from nothing.
		for range len(freeBatches) {
			batchPool.Put(<-freeBatches)
		}
		for range len(freeBufs) {
			bufPool.Put(<-freeBufs)
		}
	}()
	reads := make(chan read, 1)
	encoded := make(chan Chunk, 1)
	g, gctx := errgroup.WithContext(ctx)
	take := func(ch chan *schema.Batch) (*schema.Batch, error) {
		select {
		case b := <-ch:
			return b, nil
		case <-gctx.Done():
			return nil, gctx.Err()
		}
	}

	g.Go(func() error { // read
		defer close(reads)
		after := pos
		for n := 1; time.Now().Before(deadline); n++ {
			b, err := take(freeBatches)
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := retry.Do(gctx, func(ctx context.Context, _ int) error {
				return src.ReadChunk(ctx, from, to, after, chunkSize, b)
			}); err != nil {
				return fmt.Errorf("read chunk %d: %w", n, err)
			}
			select {
			case reads <- read{n: n, batch: b, took: time.Since(t0)}:
			case <-gctx.Done():
				return gctx.Err()
			}
			if b.Rows < chunkSize && !b.Truncated {
				return nil
			}
			last := b.Last
			after = &last
		}
		return nil
	})

	g.Go(func() error { // encode
		defer close(encoded)
		for r := range reads {
			var buf *bytes.Buffer
			select {
			case buf = <-freeBufs:
			case <-gctx.Done():
				return gctx.Err()
			}
			buf.Reset()
			t0 := time.Now()
			b := r.batch
			if b.Rows > 0 {
				if err := enc.Encode(buf, b); err != nil {
					return fmt.Errorf("encode chunk %d: %w", r.n, err)
				}
			}
			c := Chunk{N: r.n, Rows: b.Rows, First: b.First, Last: b.Last, MaxID: b.MaxID, Data: buf,
				Final: b.Rows < chunkSize && !b.Truncated,
				Read:  r.took, Encode: time.Since(t0)}
			freeBatches <- b
			select {
			case encoded <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})

	g.Go(func() error { // load
		for c := range encoded {
			if c.Rows > 0 {
				if err := load(gctx, c); err != nil {
					return err
				}
			}
			if c.Final {
				done = true
			}
			freeBufs <- c.Data
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return false, err
	}
	return done, nil
}
