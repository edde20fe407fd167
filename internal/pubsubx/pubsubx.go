// Package pubsubx connects to Pub/Sub (or to the emulator named by
// PUBSUB_EMULATOR_HOST, which the client library honours) and publishes
// date messages.
package pubsubx

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Config names the dates topic and, for pull mode, a subscription.
type Config struct {
	// Project defaults to the BigQuery project.
	Project      string `env:"PROJECT"`
	Topic        string `env:"TOPIC"`
	Subscription string `env:"SUBSCRIPTION"`
	// EmulatorHost (PUBSUB_EMULATOR_HOST, the client library's own
	// variable) points the client at an emulator such as pstest.
	EmulatorHost string `env:"EMULATOR_HOST"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)

// Validate reports every problem, naming the variable with prefix.
// Use is what a binary does with Pub/Sub, which decides the settings it
// needs: flags, combined with |; zero is no Pub/Sub at all.
type Use uint8

const (
	Publishes  Use = 1 << iota // publishes to the dates topic: TOPIC
	Subscribes                 // pulls the dates subscription: SUBSCRIPTION
)

// Validate checks the settings; use says which of them the binary needs.
func (c Config) Validate(prefix string, use Use) error {
	var errs []error
	if use&Publishes != 0 && c.Topic == "" {
		errs = append(errs, fmt.Errorf("%sTOPIC is required (the dates topic id)", prefix))
	}
	if c.Topic != "" && !nameRE.MatchString(c.Topic) {
		errs = append(errs, fmt.Errorf("%sTOPIC %q is not a valid topic id", prefix, c.Topic))
	}
	if use&Subscribes != 0 && c.Subscription == "" {
		errs = append(errs, fmt.Errorf("%sSUBSCRIPTION is required in pull mode", prefix))
	}
	if c.Subscription != "" && !nameRE.MatchString(c.Subscription) {
		errs = append(errs, fmt.Errorf("%sSUBSCRIPTION %q is not a valid subscription id", prefix, c.Subscription))
	}
	return errors.Join(errs...)
}

// NewClient connects to Pub/Sub.
func NewClient(ctx context.Context, c Config) (*pubsub.Client, error) {
	var opts []option.ClientOption
	if c.EmulatorHost != "" {
		opts = append(opts, option.WithEndpoint(c.EmulatorHost), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	client, err := pubsub.NewClient(ctx, c.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to Pub/Sub: %w", err)
	}
	return client, nil
}

// Publisher publishes date messages and waits for each to be accepted.
type Publisher struct {
	p *pubsub.Publisher
}

// NewPublisher publishes to topic.
func NewPublisher(client *pubsub.Client, topic string) *Publisher {
	return &Publisher{p: client.Publisher(topic)}
}

// Publish sends data and returns once Pub/Sub has stored it.
func (p *Publisher) Publish(ctx context.Context, data []byte) error {
	if _, err := p.p.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Stop flushes and stops the publisher.
func (p *Publisher) Stop() { p.p.Stop() }
