// Package localpubsub is the Pub/Sub every local runner uses (dev/pstestd
// for make stack-up and make demo, make scale, make chaos, and the tests'
// helper in internal/testenv): the official fake, pstest, behind a small
// front that corrects two of its gaps. A hand-written fake is allowed only
// where pstest cannot show a behaviour; the front keeps pstest as the store
// of messages, acks, delivery attempts and dead-lettering, and changes only
// when and to whom a message is handed out.
//
// The gaps (pstest v2.8.1, read from its source, fake.go):
//
//  1. Flow control. pstest ignores a StreamingPull's
//     max_outstanding_messages and pushes every available message into the
//     stream, starting its lease when the message enters the stream. The Go
//     client reads a stream only while its own flow control has room, so
//     the rest wait unread in gRPC's buffers, their leases run out unseen,
//     and pstest sends them again under a new ack id. When the client
//     finally reaches the stale copy and acks it, pstest drops the ack ("ignore
//     old ack": the ack id is no longer the message's current one), so the
//     acked message comes back a lease later, again and again. Real Pub/Sub
//     sends a stream no more than max_outstanding_messages unacked messages.
//     The front does the same.
//  2. Retention. pstest deletes a message that is not out on a lease ten
//     minutes after it was published (retentionDuration), whatever the
//     subscription's message_retention_duration: a backlog held back by
//     flow control for longer silently loses its tail, and so does a
//     message nacked, or whose lease lapsed (a loader killed), once it is
//     ten minutes old. Real Pub/Sub keeps an unacked message for the
//     subscription's retention (7 days by default). The front takes each
//     message from pstest as soon as it is published and keeps it leased
//     there for that retention, so pstest never makes it available again
//     and never purges it; redelivery after a nack or a lapsed lease,
//     delivery attempts and dead-lettering (which pstest did on its own
//     redeliveries) are therefore the front's, done as pstest and real
//     Pub/Sub do them. The front drops a message once the retention has
//     passed.
//
// Not supported: Seek; ordering keys are passed on but not honoured.
package localpubsub

import (
	"context"
	"fmt"
	"maps"
	"net"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
)

// Server is pstest with the front before it.
type Server struct {
	// Fake is the pstest underneath; its Messages tell each message's
	// deliveries (hand-outs to a client) and acks.
	Fake *pstest.Server
	// Addr is the front's address: point clients here
	// (PUBSUB_EMULATOR_HOST), never at Fake.Addr.
	Addr string

	f      *front
	srv    *grpc.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// New starts pstest (opts go to it, e.g. pstest.WithErrorInjection) and
// the front listening on addr ("127.0.0.1:0" for any free port).
func New(ctx context.Context, addr string, opts ...pstest.ServerReactorOption) (*Server, error) {
	return start(ctx, addr, time.Now, opts...)
}

// start is New on the clock now (pstest's and the front's).
func start(ctx context.Context, addr string, now func() time.Time, opts ...pstest.ServerReactorOption) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	fake := pstest.NewServer(opts...)
	fake.SetTimeNowFunc(now)
	f := newFront(&fake.GServer, now)
	srv := grpc.NewServer()
	pb.RegisterPublisherServer(srv, f)
	pb.RegisterSubscriberServer(srv, f)
	pb.RegisterSchemaServiceServer(srv, f)
	// The keeper outlives the caller's ctx, which may only bound the start.
	kctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{Fake: fake, Addr: ln.Addr().String(), f: f, srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		f.keep(kctx)
	}()
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Deliveries is how many times each message (by id) was handed to a
// client: pstest's own count is 1 for every message the front took.
func (s *Server) Deliveries() map[string]int {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return maps.Clone(s.f.deliveries)
}

// Close stops the front and pstest.
func (s *Server) Close() error {
	s.cancel()
	<-s.done
	s.srv.Stop()
	return s.Fake.Close()
}
