# pgbq, production environment: modules/stack, the deployment every
# environment shares, with what makes it prod.

module "stack" {
  source = "../../modules/stack"

  environment         = "prod"
  deletion_protection = true
  # A production deploy waits for a person holding roles/cloudbuild.builds.approver.
  require_approval = true

  project_id                 = var.project_id
  region                     = var.region
  name_prefix                = var.name_prefix
  image_tag                  = var.image_tag
  database                   = var.database
  pg_password_secret_version = var.pg_password_secret_version
  vpc_egress                 = var.vpc_egress
  build_trigger              = var.build_trigger
  log_level                  = var.log_level

  sync = {
    table             = var.source_table
    tables            = var.tables
    id_column         = var.id_column
    timestamp_column  = var.timestamp_column
    dest_table        = var.dest_table
    start_date        = var.start_date
    chunk_size        = var.chunk_size
    finish_grace      = var.finish_grace
    updated_at_column = var.updated_at_column
    changes_grace     = var.changes_grace
    sweep_days        = var.sweep_days
  }
  bigquery = {
    location                      = var.bigquery_location
    datasets                      = var.bigquery_datasets
    staging_table_expiration_days = var.staging_table_expiration_days
    reader_groups                 = var.bigquery_reader_groups
  }
  loader = {
    max_instances  = var.loader_max_instances
    budget_seconds = var.loader_budget_seconds
    memory         = var.loader_memory
  }
  planner = {
    schedule         = var.planner_schedule
    time_zone        = var.planner_time_zone
    max_dates        = var.planner_max_dates
    in_flight        = var.planner_in_flight
    queued           = var.planner_queued
    recheck_days     = var.planner_recheck_days
    quarantine_after = var.planner_quarantine_after
  }
  pubsub = {
    max_delivery_attempts = var.max_delivery_attempts
    legacy_token_creator  = var.legacy_pubsub_token_creator
  }
  backfill = {
    instances       = var.backfill_loaders
    max_outstanding = var.backfill_max_outstanding
  }
  monitoring = {
    notification_channels = var.notification_channels
    runbook_url           = var.runbook_url
    freshness_lag_hours   = var.freshness_lag_hours
  }
}
