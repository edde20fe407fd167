# One service account per workload, each with only what it needs
# (least privilege; docs/security.md lists every grant, terraform/README.md). Grants on the Cloud Run service, worker pool and job themselves
# (run.invoker, run.developer) live next to those resources in their
# modules; the datasets' access is listed on the datasets (bigquery module);
# Pub/Sub's own service agent is granted its dead-lettering rights in the
# pubsub module.

resource "google_service_account" "loader" {
  project      = var.project_id
  account_id   = "${var.name}-loader"
  display_name = "pgbq loader (${var.name})"
  description  = "Runs the loader service (push): reads PostgreSQL, loads and publishes BigQuery tables, publishes continuations to the dates topic."
}

# The back-fill worker pool has its own identity: the push service never
# pulls the back-fill subscription, the pool never publishes to the dates
# topic.
resource "google_service_account" "backfill" {
  project      = var.project_id
  account_id   = "${var.name}-backfill"
  display_name = "pgbq back-fill loader (${var.name})"
  description  = "Runs the back-fill worker pool: pulls the back-fill subscription, reads PostgreSQL, loads and publishes BigQuery tables."
}

resource "google_service_account" "planner" {
  project      = var.project_id
  account_id   = "${var.name}-planner"
  display_name = "pgbq planner (${var.name})"
  description  = "Runs the planner job and the operator commands: reads PostgreSQL and sync_control, publishes dates, repairs dates."
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name}-push"
  display_name = "pgbq push identity (${var.name})"
  description  = "Identity of Pub/Sub's push requests to the loader; may only invoke the loader."
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name}-scheduler"
  display_name = "pgbq scheduler (${var.name})"
  description  = "Identity of Cloud Scheduler's calls that run the planner job; may only run that job."
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "${var.name}-deployer"
  display_name = "pgbq deployer (${var.name})"
  description  = "Cloud Build, deploy builds: pushes images and rolls the loader, back-fill pool and planner onto them; runs no tests."
}

# The test builds (cloudbuild-test.yaml) run third-party code (modules,
# packages, Terraform providers) and hold no right beyond writing their logs.
resource "google_service_account" "tester" {
  project      = var.project_id
  account_id   = "${var.name}-tester"
  display_name = "pgbq tester (${var.name})"
  description  = "Cloud Build, test builds: vet, tests, Terraform checks. No deploy rights, no data access."
}

# --- loader, back-fill loader and planner ---------------------------------------

locals {
  # The runtime identities. All read PostgreSQL (the password, its CA; on
  # Cloud SQL, the connector) and run BigQuery jobs; their dataset access
  # is on the datasets (bigquery module).
  runtime_members = {
    loader   = google_service_account.loader.member
    backfill = google_service_account.backfill.member
    planner  = google_service_account.planner.member
  }

  # PROJECT:REGION:INSTANCE; the project part may itself hold a colon
  # (domain-scoped projects, example.com:project).
  cloud_sql_parts = var.cloud_sql_instance == "" ? null : regex("^(.+):([a-z]+-[a-z]+[0-9]+):([a-z][a-z0-9-]*)$", var.cloud_sql_instance)
}

resource "google_project_iam_member" "bigquery_jobs" {
  for_each = local.runtime_members

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value
}

# The publish fence (internal/bq/fence.go): before a day is published, the
# runtime that publishes it finds every earlier publish job of that day that
# may still run, whichever identity started it (the push service, the
# back-fill pool, the planner's rebuilds), cancels it and waits until it is
# done. Listing and cancelling other identities' jobs needs these three
# permissions on the project
# (https://cloud.google.com/bigquery/docs/access-control#bigquery.jobs.listAll);
# a custom role grants them and nothing else (no data, no datasets).
resource "google_project_iam_custom_role" "publish_fence" {
  project     = var.project_id
  role_id     = "${replace(var.name, "-", "_")}_publish_fence"
  title       = "${var.name} publish fence"
  description = "Lists, reads and cancels BigQuery jobs of the project, so that a pgbq publish can fence earlier publish jobs of the same day."
  permissions = ["bigquery.jobs.get", "bigquery.jobs.listAll", "bigquery.jobs.update"]
}

resource "google_project_iam_member" "publish_fence" {
  for_each = local.runtime_members

  project = var.project_id
  role    = google_project_iam_custom_role.publish_fence.id
  member  = each.value
}

resource "google_secret_manager_secret_iam_member" "pg_password" {
  for_each = local.runtime_members

  project   = var.project_id
  secret_id = var.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

# The CA that verifies the PostgreSQL server (sslrootcert), when one is used.
resource "google_secret_manager_secret_iam_member" "pg_ca" {
  for_each = local.runtime_members

  project   = var.project_id
  secret_id = var.ca_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

# The Cloud SQL connector, on this environment's instance only: an IAM
# condition on the instance's resource name, so that a dev identity cannot
# reach prod's instance when both live in one project
# (https://cloud.google.com/sql/docs/postgres/iam-conditions).
resource "google_project_iam_member" "cloud_sql" {
  for_each = { for component, member in local.runtime_members : component => member if var.cloud_sql_instance != "" }

  project = local.cloud_sql_parts[0]
  role    = "roles/cloudsql.client"
  member  = each.value

  condition {
    title       = "only ${local.cloud_sql_parts[2]}"
    description = "The Cloud SQL instance this pgbq environment reads."
    expression  = "resource.name == \"projects/${local.cloud_sql_parts[0]}/instances/${local.cloud_sql_parts[2]}\""
  }
}

# The push service publishes continuations, the planner the dates.
resource "google_pubsub_topic_iam_member" "publishes_dates" {
  for_each = {
    loader  = google_service_account.loader.member
    planner = google_service_account.planner.member
  }

  project = var.project_id
  topic   = var.topic_id
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# Back-fills: the planner publishes dates to the back-fill topic when run
# with PUBSUB_TOPIC set to it, the back-fill pool pulls them (and would
# publish a continuation there).
resource "google_pubsub_topic_iam_member" "publishes_backfill" {
  for_each = {
    backfill = google_service_account.backfill.member
    planner  = google_service_account.planner.member
  }

  project = var.project_id
  topic   = var.backfill_topic_id
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_subscription_iam_member" "backfill_pulls" {
  project      = var.project_id
  subscription = var.backfill_subscription
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.backfill.member
}

# --- deployer (Cloud Build) ---------------------------------------------------

resource "google_artifact_registry_repository_iam_member" "deployer_pushes_images" {
  project    = var.project_id
  location   = var.region
  repository = var.repository_id
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deployer.member
}

# A build running as a user-managed service account writes its own logs.
resource "google_project_iam_member" "deployer_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.deployer.member
}

# Deploy builds wait for the test build of their commit (cloudbuild.yaml,
# step tested): reading builds' status is all this grants.
resource "google_project_iam_member" "deployer_reads_builds" {
  project = var.project_id
  role    = "roles/cloudbuild.builds.viewer"
  member  = google_service_account.deployer.member
}

# Deploying a revision that runs as the loader, back-fill or planner identity.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    loader   = google_service_account.loader.name
    backfill = google_service_account.backfill.name
    planner  = google_service_account.planner.name
  }

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

# --- tester (Cloud Build) -----------------------------------------------------

resource "google_project_iam_member" "tester_writes_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.tester.member
}
