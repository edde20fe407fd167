// Package deploycheck checks terraform/, cloudbuild.yaml and the Dockerfile
// offline, without a cloud account or Terraform providers: its tests load
// the Terraform modules with terraform-config-inspect and hcl/v2, evaluate
// them against each environment's example.tfvars, and hold the result
// against the binaries' configuration model and DESIGN.md's rules
// (required environment variables, the push ack deadline and the loader's
// work budget, dead-lettering, least-privilege IAM, deletion protection,
// image names, variable validation).
//
// The package has no code of its own; everything is in its tests.
package deploycheck
