# Copy to terraform.tfvars and fill in. Nothing here is secret: the database
# password lives in Secret Manager (docs/deploy.md).

project_id  = "my-project-dev"
region      = "us-central1"
name_prefix = "pgbq"

# The commit whose images the first `apply` starts from (cloudbuild.yaml tags
# images with $COMMIT_SHA). Later images are deployed by Cloud Build.
image_tag = "0123456789abcdef0123456789abcdef01234567"

# Cloud SQL through the connector (the instance needs a public IP; no
# authorized networks): set cloud_sql_instance. Any other PostgreSQL: set
# host (and vpc_egress for a private address) instead.
database = {
  name               = "app"
  user               = "pgbq"
  cloud_sql_instance = "my-project-dev:us-central1:app-db"
}

pg_password_secret_version = "1"

source_table = "public.activity_logs"
start_date   = "2024-01-01"

loader_max_instances = 5
planner_schedule     = "0 * * * *"

# build_trigger = {
#   repository   = "projects/my-project-dev/locations/us-central1/connections/github/repositories/pgbq"
#   branch_regex = "^main$"
# }
