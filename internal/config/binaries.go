package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/pgbq/pgbq/internal/pubsubx"
)

// Loader is the loader binary's configuration. It lives here, not in
// package main, so that the deploy checks (internal/deploycheck) read the
// same variables, defaults and validation the binary does.
type Loader struct {
	Common Common
	// Budget is how long one message works before it hands the rest of
	// its date to a continuation message; below the 600 s ack deadline.
	Budget time.Duration `env:"LOADER_BUDGET, default=480s"`
	// Port is where push requests arrive (Cloud Run sets it).
	Port string `env:"PORT, default=8080"`
	// Concurrency is how many messages a pulling loader works at once.
	Concurrency int `env:"LOADER_CONCURRENCY, default=1"`
}

// MaxLoaderBudget keeps a request's work, plus loader.FinishTime for the
// last load and the publish, inside Pub/Sub's 600 s push ack deadline.
const MaxLoaderBudget = 530 * time.Second

// LoaderMode is how a loader receives its dates.
type LoaderMode int

const (
	// Serve answers push requests on PORT and publishes continuations.
	Serve LoaderMode = iota
	// Pull pulls PUBSUB_SUBSCRIPTION (and publishes continuations).
	Pull
	// Once syncs dates named on the command line; no Pub/Sub.
	Once
)

// PubSub is what the mode does with Pub/Sub.
func (m LoaderMode) PubSub() pubsubx.Use {
	switch m {
	case Serve:
		return pubsubx.Publishes
	case Pull:
		return pubsubx.Publishes | pubsubx.Subscribes
	default:
		return 0
	}
}

// Validate checks the loader's configuration for the mode it runs in.
func (c *Loader) Validate(mode LoaderMode) error {
	c.Common.Normalize()
	errs := []error{c.Common.Validate(mode.PubSub())}
	if c.Budget < 10*time.Second || c.Budget > MaxLoaderBudget {
		errs = append(errs, fmt.Errorf("LOADER_BUDGET %s is out of range (10s..%s)", c.Budget, MaxLoaderBudget))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("LOADER_CONCURRENCY %d is out of range (1..64)", c.Concurrency))
	}
	return errors.Join(errs...)
}

// Planner is the planner binary's configuration (here for the same reason
// as Loader).
type Planner struct {
	Common Common
	// InFlight: a date whose sync_control entry is younger than this is
	// being worked on (or was just planned) and is left alone.
	InFlight time.Duration `env:"PLANNER_IN_FLIGHT, default=15m"`
	// Queued: a date whose message was published but that no loader has
	// started is left alone this long (it may be waiting in the queue).
	Queued time.Duration `env:"PLANNER_QUEUED, default=24h"`
	// MaxDates caps the messages of one run.
	MaxDates int `env:"PLANNER_MAX_DATES, default=500"`
	// RecheckDays: each run compares the finished dates of this many days
	// before today again and re-opens those rows reached late.
	RecheckDays int `env:"PLANNER_RECHECK_DAYS, default=3"`
	// QuarantineAfter: a date that failed this many times (since it was
	// last re-opened) is quarantined: no longer planned until `planner
	// resync`; 0 never quarantines.
	QuarantineAfter int `env:"PLANNER_QUARANTINE_AFTER, default=3"`
}

// Validate checks the planner's configuration; use says what the command
// does with Pub/Sub (planning publishes; status, verify and check do not).
func (c *Planner) Validate(use pubsubx.Use) error {
	c.Common.Normalize()
	errs := []error{c.Common.Validate(use)}
	if c.InFlight < 0 {
		errs = append(errs, fmt.Errorf("PLANNER_IN_FLIGHT %s must not be negative", c.InFlight))
	}
	if c.Queued < 0 {
		errs = append(errs, fmt.Errorf("PLANNER_QUEUED %s must not be negative", c.Queued))
	}
	if c.MaxDates < 1 || c.MaxDates > 100000 {
		errs = append(errs, fmt.Errorf("PLANNER_MAX_DATES %d is out of range (1..100000)", c.MaxDates))
	}
	if c.RecheckDays < 0 || c.RecheckDays > 366 {
		errs = append(errs, fmt.Errorf("PLANNER_RECHECK_DAYS %d is out of range (0..366)", c.RecheckDays))
	}
	if c.QuarantineAfter < 0 || c.QuarantineAfter > 1000 {
		errs = append(errs, fmt.Errorf("PLANNER_QUARANTINE_AFTER %d is out of range (0..1000; 0 never quarantines)", c.QuarantineAfter))
	}
	return errors.Join(errs...)
}
