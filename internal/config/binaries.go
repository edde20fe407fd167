package config

import (
	"errors"
	"fmt"
	"time"
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

// Validate checks the loader's configuration; pull says it pulls from a
// subscription instead of serving push requests.
func (c *Loader) Validate(pull bool) error {
	c.Common.Normalize()
	errs := []error{c.Common.Validate(true, pull)}
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

// Validate checks the planner's configuration; needTopic says it publishes.
func (c *Planner) Validate(needTopic bool) error {
	c.Common.Normalize()
	errs := []error{c.Common.Validate(needTopic, false)}
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
