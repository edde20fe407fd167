// Package bq is the BigQuery side: datasets and tables, load jobs into
// staging tables, the atomic publish of a day, and counts. It knows nothing
// of checkpoints or PostgreSQL.
package bq

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
)

// Config is where BigQuery data lives.
type Config struct {
	Project        string `env:"PROJECT"`
	Dataset        string `env:"DATASET"`
	StagingDataset string `env:"STAGING_DATASET"`
	StateDataset   string `env:"STATE_DATASET"`
	Location       string `env:"LOCATION, default=US"`
	// Endpoint points the client at an emulator, e.g.
	// http://127.0.0.1:9050/bigquery/v2/ ; empty means BigQuery itself.
	Endpoint string `env:"ENDPOINT"`
	// Upload is how a load job's file is sent: "resumable" (BigQuery's
	// resumable upload protocol, which survives a dropped connection
	// mid-file) or "single" (one multipart request). Empty picks resumable
	// for BigQuery itself and single for an emulator endpoint: bqemulator
	// cannot take the Go client's resumable uploads.
	Upload string `env:"UPLOAD"`
}

// Upload protocols.
const (
	UploadResumable = "resumable"
	UploadSingle    = "single"
)

// upload is the protocol in effect.
func (c Config) upload() string {
	switch {
	case c.Upload != "":
		return c.Upload
	case c.Endpoint != "":
		return UploadSingle
	}
	return UploadResumable
}

// mediaOptions sets the client's upload protocol: it uploads resumably in
// 16 MiB chunks unless told that one chunk (size 0) is the whole file.
func (c Config) mediaOptions() []googleapi.MediaOption {
	if c.upload() == UploadSingle {
		return []googleapi.MediaOption{googleapi.ChunkSize(0)}
	}
	return []googleapi.MediaOption{googleapi.ChunkSize(googleapi.DefaultUploadChunkSize)}
}

var (
	projectRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.:-]{0,62}$`)
	datasetRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,1000}$`)
	// TableNameRE is what pgbq accepts for BigQuery table and column names.
	TableNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,298}$`)
)

// WithDefaults fills the staging and state datasets from Dataset.
func (c Config) WithDefaults() Config {
	if c.StagingDataset == "" {
		c.StagingDataset = c.Dataset
	}
	if c.StateDataset == "" {
		c.StateDataset = c.Dataset
	}
	return c
}

// Validate reports every problem, naming the variable with prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Project == "" {
		errs = append(errs, fmt.Errorf("%sPROJECT is required (the Google Cloud project id)", prefix))
	} else if !projectRE.MatchString(c.Project) {
		errs = append(errs, fmt.Errorf("%sPROJECT %q is not a valid project id", prefix, c.Project))
	}
	if c.Dataset == "" {
		errs = append(errs, fmt.Errorf("%sDATASET is required (the destination dataset)", prefix))
	}
	for name, v := range map[string]string{"DATASET": c.Dataset, "STAGING_DATASET": c.StagingDataset, "STATE_DATASET": c.StateDataset} {
		if v != "" && !datasetRE.MatchString(v) {
			errs = append(errs, fmt.Errorf("%s%s %q is not a valid dataset id (letters, digits, underscores)", prefix, name, v))
		}
	}
	if c.Upload != "" && c.Upload != UploadResumable && c.Upload != UploadSingle {
		errs = append(errs, fmt.Errorf("%sUPLOAD %q must be %q or %q", prefix, c.Upload, UploadResumable, UploadSingle))
	}
	return errors.Join(errs...)
}

// NewClient connects to BigQuery or to the emulator named by Endpoint.
func NewClient(ctx context.Context, c Config) (*bigquery.Client, error) {
	var opts []option.ClientOption
	if c.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(c.Endpoint), option.WithoutAuthentication())
	}
	client, err := bigquery.NewClient(ctx, c.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to BigQuery: %w", err)
	}
	client.Location = c.Location
	if err := probe(ctx, client, c); err != nil {
		client.Close()
		return nil, err
	}
	return client, nil
}

// ProbeTimeout bounds the first request: the client retries a connection
// that fails or hangs until its context ends, which at start would be
// minutes of silence for a mistyped endpoint.
const ProbeTimeout = 15 * time.Second

// probe asks for the destination dataset once, within ProbeTimeout. Any
// answer from BigQuery, an error status included (not found, permission
// denied), shows the endpoint is there; the callers deal with the status.
func probe(ctx context.Context, client *bigquery.Client, c Config) error {
	if c.Dataset == "" {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	_, err := client.Dataset(c.Dataset).Metadata(pctx)
	var apiErr *googleapi.Error
	if err == nil || errors.As(err, &apiErr) || ctx.Err() != nil {
		return nil
	}
	where := "BigQuery (BQ_ENDPOINT is empty)"
	if c.Endpoint != "" {
		where = fmt.Sprintf("BQ_ENDPOINT %s", c.Endpoint)
	}
	return fmt.Errorf("%s did not answer within %s: %w", where, ProbeTimeout, err)
}
