# Copy to terraform.tfvars and fill in. Nothing here is secret: the database
# password lives in Secret Manager (docs/deploy.md).

project_id  = "my-project-prod"
region      = "us-central1"
name_prefix = "pgbq"

# The commit whose images the first `apply` starts from (cloudbuild.yaml tags
# images with $COMMIT_SHA). Later images are deployed by Cloud Build.
image_tag = "0123456789abcdef0123456789abcdef01234567"

# A PostgreSQL on a private address, reached over Direct VPC egress, over
# TLS that verifies the server: its certificate names 10.20.0.5 and is
# signed by the CA in version 1 of the pgbq-prod-pg-ca secret. For Cloud SQL
# through the connector, set cloud_sql_instance instead of host.
database = {
  name              = "app"
  user              = "pgbq"
  host              = "10.20.0.5"
  port              = 5432
  sslmode           = "verify-full"
  ca_secret_version = "1"
}

vpc_egress = {
  network    = "prod-vpc"
  subnetwork = "prod-us-central1"
}

pg_password_secret_version = "1"

source_table = "public.activity_logs"

loader_max_instances = 20
planner_schedule     = "0 * * * *"

# Production deploys from release tags, each approved by a person holding
# roles/cloudbuild.builds.approver (docs/security.md: protect the v* tags).
# build_trigger = {
#   repository = "projects/my-project-prod/locations/us-central1/connections/github/repositories/pgbq"
#   tag_regex  = "^v[0-9]+\\.[0-9]+\\.[0-9]+$"
# }
