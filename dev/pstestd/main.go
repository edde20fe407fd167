// Command pstestd hosts the local Pub/Sub (the official fake, pstest,
// behind the front of internal/localpubsub, which honours flow control and
// keeps every unacked message for the subscription's retention) for
// multi-process local runs (make demo, make stack-up), with the dates topic
// and a pull subscription created. Point clients at it with
// PUBSUB_EMULATOR_HOST=127.0.0.1:PORT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pubsub "cloud.google.com/go/pubsub/v2"

	"github.com/pgbq/pgbq/internal/localpubsub"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pstestd:", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 8085, "port on 127.0.0.1")
	project := flag.String("project", "pgbq-local", "project id")
	topic := flag.String("topic", "dates", "topic to create")
	sub := flag.String("subscription", "dates-loader", "pull subscription to create on the topic")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	srv, err := localpubsub.New(cctx, fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return err
	}
	defer srv.Close()
	client, err := pubsub.NewClient(cctx, *project, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return err
	}
	defer client.Close()
	topicName := fmt.Sprintf("projects/%s/topics/%s", *project, *topic)
	if _, err := client.TopicAdminClient.CreateTopic(cctx, &pubsubpb.Topic{Name: topicName}); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(cctx, &pubsubpb.Subscription{
		Name:               fmt.Sprintf("projects/%s/subscriptions/%s", *project, *sub),
		Topic:              topicName,
		AckDeadlineSeconds: 60,
	}); err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	fmt.Printf("pstestd: listening on %s, topic %s, subscription %s\n", srv.Addr, *topic, *sub)
	<-ctx.Done()
	return nil
}
