package testenv

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgbq/pgbq/internal/localpubsub"
)

// PubSub is an in-process local Pub/Sub (pstest behind the front of
// internal/localpubsub, which honours flow control and retention) with one
// topic.
type PubSub struct {
	// Server is the pstest underneath, for its record of messages.
	Server *pstest.Server
	// Addr is where clients connect.
	Addr   string
	Client *pubsub.Client
	Topic  string
}

// NewPubSub starts the local Pub/Sub and creates the topic "dates"; opts
// go to pstest (pstest.WithErrorInjection makes a call fail).
func NewPubSub(t testing.TB, opts ...pstest.ServerReactorOption) *PubSub {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	local, err := localpubsub.New(ctx, "127.0.0.1:0", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	srv := local.Fake
	client, err := pubsub.NewClient(ctx, "pgbq-test", option.WithEndpoint(local.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/pgbq-test/topics/dates"}); err != nil {
		t.Fatal(err)
	}
	return &PubSub{Server: srv, Addr: local.Addr, Client: client, Topic: "dates"}
}

// Published returns the data of every message published, in order.
func (p *PubSub) Published() []string {
	msgs := p.Server.Messages()
	sort.Slice(msgs, func(i, j int) bool { return seq(msgs[i].ID) < seq(msgs[j].ID) })
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Data)
	}
	return out
}

func seq(id string) int {
	n, _ := strconv.Atoi(strings.TrimLeft(id, "m"))
	return n
}
