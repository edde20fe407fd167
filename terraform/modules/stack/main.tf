# pgbq's whole deployment for one environment: envs/dev and envs/prod each
# call this module with their environment name and deletion protection.

locals {
  name         = "${var.name_prefix}-${var.environment}"
  dataset_base = replace(local.name, "-", "_")
  dataset_ids = {
    destination = var.bigquery.datasets.destination != "" ? var.bigquery.datasets.destination : local.dataset_base
    staging     = var.bigquery.datasets.staging != "" ? var.bigquery.datasets.staging : "${local.dataset_base}_staging"
    state       = var.bigquery.datasets.state != "" ? var.bigquery.datasets.state : "${local.dataset_base}_state"
  }

  # Pub/Sub push allows at most 600 s before a delivery counts as failed; the
  # loader's request timeout is the same and LOADER_BUDGET stays below it.
  ack_deadline_seconds = 600

  # The PostgreSQL server's CA, mounted where PG_DSN's sslrootcert names it.
  # (An object literal, not merge(): the null branch must have the same
  # attributes for the modules' pg_ca variable to take it.)
  pg_ca = module.config.pg_ca == null ? null : {
    secret  = module.secret.ca_secret_id
    version = module.config.pg_ca.version
    dir     = module.config.pg_ca.dir
    file    = module.config.pg_ca.file
  }
}

module "build" {
  source = "../build"

  project_id               = var.project_id
  region                   = var.region
  repository_id            = local.name
  trigger                  = var.build_trigger
  trigger_name             = local.name
  build_service_account_id = module.iam.names.deployer
  test_service_account_id  = module.iam.names.tester
  require_approval         = var.require_approval
  # What cloudbuild.yaml needs to find this environment's repository,
  # service and job.
  substitutions = {
    _ENV         = var.environment
    _REGION      = var.region
    _NAME_PREFIX = var.name_prefix
  }
}

module "bigquery" {
  source = "../bigquery"

  project_id                    = var.project_id
  location                      = var.bigquery.location
  dataset_ids                   = local.dataset_ids
  staging_table_expiration_days = var.bigquery.staging_table_expiration_days
  deletion_protection           = var.deletion_protection
  writer_emails                 = [module.iam.emails.loader, module.iam.emails.backfill, module.iam.emails.planner]
  reader_groups                 = var.bigquery.reader_groups
}

module "secret" {
  source = "../secret"

  project_id          = var.project_id
  secret_id           = "${local.name}-pg-password"
  ca_secret_id        = "${local.name}-pg-ca"
  deletion_protection = var.deletion_protection
}

module "iam" {
  source = "../iam"

  project_id = var.project_id
  region     = var.region
  name       = local.name
  topic_id   = module.pubsub.topic_id

  backfill_topic_id     = module.pubsub.backfill_topic_id
  backfill_subscription = module.pubsub.backfill_subscription
  secret_id             = module.secret.secret_id
  repository_id         = module.build.repository_id
  cloud_sql_instance    = var.database.cloud_sql_instance
  ca_secret_id          = module.secret.ca_secret_id
}

module "pubsub" {
  source = "../pubsub"

  project_id                 = var.project_id
  name                       = local.name
  push_endpoint              = module.loader.uri
  push_audience              = module.loader.uri
  push_service_account_email = module.iam.emails.push
  push_service_account_name  = module.iam.names.push
  ack_deadline_seconds       = local.ack_deadline_seconds
  max_delivery_attempts      = var.pubsub.max_delivery_attempts
  grant_agent_token_creator  = var.pubsub.legacy_token_creator
}

module "config" {
  source = "../config"

  project_id        = var.project_id
  bigquery_location = var.bigquery.location
  dataset_ids       = module.bigquery.dataset_ids
  topic_name        = module.pubsub.topic_name
  database          = var.database
  log_level         = var.log_level
  sync              = var.sync
}

module "loader" {
  source = "../loader"

  project_id              = var.project_id
  region                  = var.region
  name                    = "${local.name}-loader"
  image                   = "${module.build.repository_url}/loader:${var.image_tag}"
  env                     = module.config.env
  budget_seconds          = var.loader.budget_seconds
  request_timeout_seconds = local.ack_deadline_seconds
  max_instances           = var.loader.max_instances
  memory                  = var.loader.memory
  # runtime_emails is known only once the loader's and planner's grants
  # exist: the first revision can read the secret and reach BigQuery.
  service_account_email      = module.iam.runtime_emails.loader
  pg_password_secret         = module.secret.secret_id
  pg_password_secret_version = var.pg_password_secret_version
  pg_ca                      = local.pg_ca
  cloud_sql_instance         = var.database.cloud_sql_instance
  vpc_egress                 = var.vpc_egress
  invoker_member             = module.iam.members.push
  deployer_member            = module.iam.members.deployer
  deletion_protection        = var.deletion_protection
}

module "loader_pool" {
  source = "../loader_pool"

  project_id                 = var.project_id
  region                     = var.region
  name                       = "${local.name}-backfill"
  image                      = "${module.build.repository_url}/loader:${var.image_tag}"
  env                        = module.config.env
  topic_name                 = module.pubsub.backfill_topic
  subscription_name          = module.pubsub.backfill_subscription
  instance_count             = var.backfill.instances
  max_outstanding            = var.backfill.max_outstanding
  memory                     = var.loader.memory
  service_account_email      = module.iam.runtime_emails.backfill
  pg_password_secret         = module.secret.secret_id
  pg_password_secret_version = var.pg_password_secret_version
  pg_ca                      = local.pg_ca
  cloud_sql_instance         = var.database.cloud_sql_instance
  vpc_egress                 = var.vpc_egress
  deployer_member            = module.iam.members.deployer
  deletion_protection        = var.deletion_protection
}

module "planner" {
  source = "../planner"

  project_id                      = var.project_id
  region                          = var.region
  name                            = "${local.name}-planner"
  image                           = "${module.build.repository_url}/planner:${var.image_tag}"
  env                             = module.config.env
  max_dates                       = var.planner.max_dates
  schedule                        = var.planner.schedule
  time_zone                       = var.planner.time_zone
  service_account_email           = module.iam.runtime_emails.planner
  scheduler_service_account_email = module.iam.emails.scheduler
  deployer_member                 = module.iam.members.deployer
  pg_password_secret              = module.secret.secret_id
  pg_password_secret_version      = var.pg_password_secret_version
  pg_ca                           = local.pg_ca
  pin_args                        = module.config.pin_args
  cloud_sql_instance              = var.database.cloud_sql_instance
  vpc_egress                      = var.vpc_egress
  deletion_protection             = var.deletion_protection
  in_flight                       = var.planner.in_flight
  queued                          = var.planner.queued
  recheck_days                    = var.planner.recheck_days
  quarantine_after                = var.planner.quarantine_after
}

module "monitoring" {
  source = "../monitoring"

  project_id               = var.project_id
  name                     = local.name
  loader_service           = module.loader.name
  backfill_pool            = module.loader_pool.name
  planner_job              = module.planner.name
  planner_queued           = var.planner.queued
  push_subscription        = module.pubsub.push_subscription
  pull_subscription        = module.pubsub.backfill_subscription
  dead_letter_subscription = module.pubsub.dead_letter_subscription
  notification_channels    = var.monitoring.notification_channels
  runbook_url              = var.monitoring.runbook_url
  freshness_lag_hours      = var.monitoring.freshness_lag_hours
}
