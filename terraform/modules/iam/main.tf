# One service account per component, each with only what it needs
# (least privilege; docs/security.md, terraform/README.md). Grants on the Cloud Run
# service and job themselves (run.invoker, run.developer) live next to those
# resources in the loader and planner modules; Pub/Sub's own service agent is
# granted its dead-lettering rights in the pubsub module.

resource "google_service_account" "loader" {
  project      = var.project_id
  account_id   = "${var.name}-loader"
  display_name = "pgbq loader (${var.name})"
  description  = "Runs the loader service: reads PostgreSQL, loads and publishes BigQuery tables, publishes continuations."
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
  description  = "Cloud Build: pushes images and rolls the loader and planner onto them."
}

# --- loader and planner -------------------------------------------------------

locals {
  # The runtime identities. Both read PostgreSQL (the password; on Cloud SQL,
  # the connector), run BigQuery jobs and publish to the dates topic: the
  # loader its continuations for dates that outlast one request, the planner
  # the dates themselves. Their dataset roles differ (below).
  runtime_members = {
    loader  = google_service_account.loader.member
    planner = google_service_account.planner.member
  }
}

resource "google_project_iam_member" "bigquery_jobs" {
  for_each = local.runtime_members

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value
}

resource "google_secret_manager_secret_iam_member" "pg_password" {
  for_each = local.runtime_members

  project   = var.project_id
  secret_id = var.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value
}

resource "google_project_iam_member" "cloud_sql" {
  for_each = { for component, member in local.runtime_members : component => member if var.cloud_sql }

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = each.value
}

resource "google_pubsub_topic_iam_member" "publishes_dates" {
  for_each = local.runtime_members

  project = var.project_id
  topic   = var.topic_id
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# Back-fills: the planner publishes dates to the back-fill topic when run
# with PUBSUB_TOPIC set to it, the loader worker pool pulls them (and would
# publish a continuation there).
resource "google_pubsub_topic_iam_member" "publishes_backfill" {
  for_each = local.runtime_members

  project = var.project_id
  topic   = var.backfill_topic_id
  role    = "roles/pubsub.publisher"
  member  = each.value
}

resource "google_pubsub_subscription_iam_member" "loader_pulls_backfill" {
  project      = var.project_id
  subscription = var.backfill_subscription
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.loader.member
}

# Load jobs, staging tables, the publish transaction, checkpoints.
resource "google_bigquery_dataset_iam_member" "loader_data" {
  for_each = toset(["destination", "staging", "state"])

  project    = var.project_id
  dataset_id = var.dataset_ids[each.key]
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.loader.member
}

# The planner appends rows to sync_control_log (planned, quarantined, and
# the operator commands' reopened, paused and resumed) and may create the
# destination table and sync_control when it starts first. `planner verify
# --repair` rebuilds a date the way a loader does (load jobs into a staging
# table, then the publish into the destination), so the planner edits the
# staging dataset too; it has no other role there than the loader's.
resource "google_bigquery_dataset_iam_member" "planner_data" {
  for_each = {
    destination = "roles/bigquery.dataEditor"
    state       = "roles/bigquery.dataEditor"
    staging     = "roles/bigquery.dataEditor"
  }

  project    = var.project_id
  dataset_id = var.dataset_ids[each.key]
  role       = each.value
  member     = google_service_account.planner.member
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

# Deploying a revision that runs as the loader or planner identity.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    loader  = google_service_account.loader.name
    planner = google_service_account.planner.name
  }

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}
