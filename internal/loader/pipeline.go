package loader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pgbq/pgbq/internal/parquetenc"
	"github.com/pgbq/pgbq/internal/retry"
	"github.com/pgbq/pgbq/internal/schema"
)

// ChunkReader reads a piece of a chunk: up to limit of the rows with
// timestamps in [from, to) in keyset order after a position (nil: from the
// start), fewer (Truncated) once the chunk's earlier pieces' used bytes
// and its own reach the reader's cap. Reading the same position twice
// gives the same rows, so a failed read can be retried.
type ChunkReader interface {
	ReadPiece(ctx context.Context, from, to time.Time, after *schema.Key, limit, used int, b *schema.Batch) error
}

// Encoder writes the batches next hands it, until nil, as one file for a
// load job, one row group a batch. Encoding the same batches twice gives
// the same bytes.
type Encoder interface {
	EncodeGroups(w io.Writer, next func() (*schema.Batch, error)) error
}

// PieceRows is the rows of one read, and of one row group: a chunk is
// read in pieces, each encoded while the next is read, so that even a day
// of a single chunk (the hourly run's today) does not read first and
// encode after.
const PieceRows = 32768

// piece is one read of a chunk; last: the chunk's last, final: the day's
// too.
type piece struct {
	n           int
	batch       *schema.Batch
	took        time.Duration
	last, final bool
}

// Chunk is one encoded chunk on its way to BigQuery.
type Chunk struct {
	N           int // 1-based within this run
	Rows        int
	First, Last schema.Key
	MaxID       int64
	// Hash is the chunk's share of its day's fingerprint
	// (schema.DayFingerprint.Hash).
	Hash int64
	// Earliest and Latest are the rows' smallest and largest instants.
	Earliest, Latest time.Time
	Data             *bytes.Buffer // Parquet; empty when Rows is 0
	// Layout is where Data's row groups are, when the encoder says
	// (a parquetenc.Encoder does).
	Layout parquetenc.Layout
	// Final: the day's rows so far end with this chunk.
	Final  bool
	Read   time.Duration
	Encode time.Duration
}

var (
	batchPool = sync.Pool{New: func() any { return new(schema.Batch) }}
	bufPool   = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// Stages are what Extract hands each chunk to.
type Stages struct {
	// Load stages one chunk. Up to InFlight loads run at once and may end
	// in any order.
	Load func(ctx context.Context, c Chunk) error
	// Commit is called once per chunk, in chunk order, once the chunk and
	// every chunk before it have loaded: a position may only advance over
	// a prefix that is entirely staged. Nil: nothing to commit.
	Commit func(ctx context.Context, c Chunk) error
	// InFlight bounds the chunks loaded but not yet committed, so also
	// the work redone after a crash; below 1 means 1.
	InFlight int
	// Encoded, if set, sees each chunk in chunk order as soon as it is
	// encoded (the day's last one, Final, too, even when empty); c.Data is
	// only valid during the call. Until it returns false, reading and
	// encoding do not wait for loads to start: encoded chunks queue for
	// their loads, up to BytesInFlight of them, so the day's end is
	// reached at the speed of reading, however slowly BigQuery's rates let
	// the loads go. Once it has returned false it is not called again.
	Encoded func(c Chunk) (ahead bool)
}

// BytesInFlight bounds the memory of encoded chunks: a chunk is encoded
// only while the buffers of those encoded and not yet committed hold less
// than this (their capacity). Chunks of wide rows, tens of MB encoded,
// then go one or two at a time, while chunks of ordinary rows (about
// 1.5 MB for 250,000 rows of the bench's table) run InFlight at once.
const BytesInFlight = 48 << 20

// keepBuf is the largest encoded chunk buffer kept for the next chunk: the
// free buffers take turns, so keeping every grown one would hold
// InFlight+1 buffers of the widest chunk seen, in use or not.
const keepBuf = 8 << 20

// Extract reads and encodes the chunks of [from, to) after pos and hands
// each to st.Load, then in order to st.Commit. The stages run at once —
// reading a piece of chunk n+1, encoding the piece before it, loading n
// and up to InFlight-1 chunks before it — joined by channels of one, so at
// most two pieces and InFlight+1 encoded chunks are in memory (more with
// st.Encoded set, which lets encoded chunks queue for their loads), and
// encoded chunks of no more than BytesInFlight and one chunk (encoding
// waits for a load to end: loads take longer than encoding, and wide rows
// make every file count). On real BigQuery a load job takes seconds whatever its
// size; loads in flight side by side keep a day from moving at one chunk
// per job latency. Extract stops after a short chunk (done: every row of
// the day so far has been committed) or when no new read may start
// because deadline has passed.
func Extract(ctx context.Context, src ChunkReader, enc Encoder, from, to time.Time, pos *schema.Key,
	chunkSize int, deadline time.Time, st Stages) (done bool, err error) {
	inFlight := max(1, st.InFlight)
	freeBatches := make(chan *schema.Batch, 2)
	freeBufs := make(chan *bytes.Buffer, inFlight+1)
	for range 2 {
		freeBatches <- batchPool.Get().(*schema.Batch)
	}
	for range inFlight + 1 {
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
	var held atomic.Int64 // capacity of the buffers out of freeBufs, once encoded
	freed := make(chan struct{}, 1)
	var eager atomic.Bool // reading ahead of the loads (st.Encoded)
	eager.Store(st.Encoded != nil)
	giveBack := func(b *bytes.Buffer) {
		held.Add(-int64(b.Cap()))
		if b.Cap() > keepBuf {
			b = new(bytes.Buffer)
		}
		select {
		case freeBufs <- b:
		default: // eager encoding made more buffers than are kept
		}
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	reads := make(chan piece, 1)
	encoded := make(chan Chunk, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { // read
		defer func() {
			if err == nil { // at a chunk's end: on an error the encoder sees gctx end instead
				close(reads)
			}
		}()
		after := pos
		for n := 1; time.Now().Before(deadline); n++ {
			rows, used := 0, 0
			for k := 1; ; k++ {
				b, err := take(gctx, freeBatches)
				if err != nil {
					return err
				}
				want := min(PieceRows, chunkSize-rows)
				t0 := time.Now()
				if err := retry.Do(gctx, func(ctx context.Context, _ int) error {
					return src.ReadPiece(ctx, from, to, after, want, used, b)
				}); err != nil {
					return fmt.Errorf("read chunk %d piece %d: %w", n, k, err)
				}
				rows, used = rows+b.Rows, used+b.Bytes
				p := piece{n: n, batch: b, took: time.Since(t0), final: b.Rows < want && !b.Truncated}
				p.last = p.final || b.Truncated || rows == chunkSize
				if b.Rows > 0 {
					last := b.Last
					after = &last
				}
				select {
				case reads <- p:
				case <-gctx.Done():
					return gctx.Err()
				}
				if p.final {
					return nil
				}
				if p.last {
					break
				}
			}
		}
		return nil
	})

	g.Go(func() error { // encode
		defer close(encoded)
		for {
			var first piece
			select {
			case p, ok := <-reads:
				if !ok {
					return nil
				}
				first = p
			case <-gctx.Done():
				return gctx.Err()
			}
			for held.Load() >= BytesInFlight {
				select {
				case <-freed:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			buf, err := buffer(gctx, freeBufs, eager.Load())
			if err != nil {
				return err
			}
			buf.Reset()
			c := Chunk{N: first.n, Data: buf}
			if err := encodeChunk(gctx, enc, &c, first, reads, freeBatches); err != nil {
				return err
			}
			held.Add(int64(buf.Cap()))
			if eager.Load() && !st.Encoded(c) {
				eager.Store(false)
			}
			select {
			case encoded <- c:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
	})

	g.Go(func() error { // load, up to inFlight at once; commit in order
		type result struct {
			c   Chunk
			err error
		}
		results := make(chan result, inFlight)
		loaded := map[int]Chunk{} // loaded, waiting for an earlier chunk
		next, running := 1, 0
		settle := func(r result) error {
			running--
			if r.err != nil {
				return r.err
			}
			loaded[r.c.N] = r.c
			for c, ok := loaded[next]; ok; c, ok = loaded[next] {
				delete(loaded, next)
				next++
				if st.Commit != nil && c.Rows > 0 {
					if err := st.Commit(gctx, c); err != nil {
						return err
					}
				}
				if c.Final {
					done = true
				}
				giveBack(c.Data)
			}
			return nil
		}
		// Loads are settled as they end, also while no chunk is ready:
		// settling commits and gives the buffers back, which encoding may
		// be waiting for (BytesInFlight). Chunks are taken from the encoder
		// when a load can start, or at once when eager (they wait in queue).
		in := encoded
		var queue []Chunk
		for in != nil || running > 0 || len(queue) > 0 {
			for len(queue) > 0 && running+len(loaded) < inFlight {
				c := queue[0]
				queue = queue[1:]
				running++
				if c.Rows == 0 {
					results <- result{c: c}
					continue
				}
				go func() { results <- result{c: c, err: st.Load(gctx, c)} }()
			}
			ready := in
			if !eager.Load() && (len(queue) > 0 || running+len(loaded) >= inFlight) {
				ready = nil
			}
			select {
			case c, ok := <-ready:
				if !ok {
					in = nil
					continue
				}
				queue = append(queue, c)
			case r := <-results:
				if err := settle(r); err != nil {
					return err
				}
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return false, err
	}
	return done, nil
}

// take receives from ch, or fails once ctx ends.
func take[T any](ctx context.Context, ch <-chan T) (T, error) {
	select {
	case v := <-ch:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// buffer is a free buffer; reading ahead, a new one when none is free
// (more than are kept: see giveBack).
func buffer(ctx context.Context, free <-chan *bytes.Buffer, ahead bool) (*bytes.Buffer, error) {
	if ahead {
		select {
		case b := <-free:
			return b, nil
		default:
			return new(bytes.Buffer), nil
		}
	}
	return take(ctx, free)
}

// encodeChunk encodes the chunk that starts with the piece first, taking
// its other pieces from reads, into c.Data, and fills in c from them. An
// empty first piece (an empty day, or one that ended with the last chunk)
// is the whole chunk: nothing is encoded. Each batch goes back to free
// once encoded.
func encodeChunk(ctx context.Context, enc Encoder, c *Chunk, first piece, reads <-chan piece, free chan<- *schema.Batch) error {
	if first.batch.Rows == 0 {
		free <- first.batch
		c.Final, c.Read = first.final, first.took
		return nil
	}
	c.First = first.batch.First
	pending := &first     // the piece to hand over before reading another
	var cur *schema.Batch // the piece being encoded
	ended := false
	var t0 time.Time
	next := func() (*schema.Batch, error) {
		if cur != nil {
			c.Encode += time.Since(t0)
			free <- cur
			cur = nil
		}
		if ended {
			return nil, nil
		}
		var p piece
		if pending != nil {
			p, pending = *pending, nil
		} else {
			var ok bool
			select {
			case p, ok = <-reads:
				if !ok {
					return nil, fmt.Errorf("the reads ended inside chunk %d", c.N)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		b := p.batch
		if b.Rows > 0 {
			c.Last, c.MaxID = b.Last, max(c.MaxID, b.MaxID)
			c.Hash += b.Hash
			if c.Earliest.IsZero() || b.Earliest.Before(c.Earliest) {
				c.Earliest = b.Earliest
			}
			if b.Latest.After(c.Latest) {
				c.Latest = b.Latest
			}
		}
		c.Rows += b.Rows
		c.Read += p.took
		ended, c.Final = p.last, p.final
		cur, t0 = b, time.Now()
		return b, nil
	}
	var err error
	if le, ok := enc.(layoutEncoder); ok {
		c.Layout, err = le.EncodeLayout(c.Data, next)
	} else {
		err = enc.EncodeGroups(c.Data, next)
	}
	if err != nil {
		if cur != nil {
			free <- cur
		}
		return fmt.Errorf("encode chunk %d: %w", c.N, err)
	}
	return nil
}

// layoutEncoder is an Encoder that also says where a file's row groups
// are (Chunk.Layout).
type layoutEncoder interface {
	EncodeLayout(w io.Writer, next func() (*schema.Batch, error)) (parquetenc.Layout, error)
}
