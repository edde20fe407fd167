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
)

// PubSub is an in-process Pub/Sub fake (pstest) with one topic.
type PubSub struct {
	Server *pstest.Server
	Client *pubsub.Client
	Topic  string
}

// NewPubSub starts pstest and creates the topic "dates"; opts go to
// pstest (pstest.WithErrorInjection makes a call fail).
func NewPubSub(t testing.TB, opts ...pstest.ServerReactorOption) *PubSub {
	t.Helper()
	srv := pstest.NewServer(opts...)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := pubsub.NewClient(ctx, "pgbq-test", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: "projects/pgbq-test/topics/dates"}); err != nil {
		t.Fatal(err)
	}
	return &PubSub{Server: srv, Client: client, Topic: "dates"}
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
