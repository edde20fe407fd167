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
// compared resource by resource. cloudbuild.yaml is read as YAML and its
// scripts as shell (mvdan.cc/sh): the deploy gate runs `make test` with CI
// set, and Terraform's own fmt, validate and test of both environments.
//
// What needs a provider (a real plan) is left to Cloud Build's
// `terraform test` with a mock provider (terraform/envs/*/tests).
//
// The package has no code of its own; everything is in its tests.
package deploycheck
