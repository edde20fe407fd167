// Package deploycheck checks terraform/, cloudbuild.yaml and the Dockerfile
// offline, without a cloud account or Terraform providers. Its tests
// evaluate every environment with internal/tfeval against its
// example.tfvars and hold the result against the binaries' own
// configuration (internal/config: the variables each binary reads, their
// defaults, its validation) and the rules docs/ states: required environment
// variables, the push ack deadline and the loader's work budget,
// dead-lettering, the back-fill pull path, least-privilege IAM, deletion
// protection, image ownership, variable validation, the monitoring
// (alerts, log-based metrics, dashboard, runbook links), and dev and prod
// compared resource by resource, and the security defaults of issue 28
// (security_test.go: verified TLS to PostgreSQL with its CA, the planner
// job's pins, the Cloud SQL grant on the instance, immutable tags, approved
// production deploys). cloudbuild-test.yaml and cloudbuild.yaml are read as
// YAML and their scripts as shell (mvdan.cc/sh): the test build runs `make
// test` with CI set and Terraform's own fmt, validate and test of both
// environments; the deploy build waits for it, and every image is pinned
// by digest. The emulator's Python packages come from a lock with a version
// and hashes on every line, and every pip install requires them
// (pylock_test.go).
//
// What needs a provider (a real plan) is left to Cloud Build's
// `terraform test` with a mock provider (terraform/envs/*/tests).
//
// The package has no code of its own; everything is in its tests.
package deploycheck
