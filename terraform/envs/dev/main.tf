# pgbq, development environment. envs/prod composes the same modules; what
# differs is fixed in the locals below, not in variables.

locals {
  environment         = "dev"
  deletion_protection = false

  name         = "${var.name_prefix}-${local.environment}"
  dataset_base = replace(local.name, "-", "_")
  dataset_ids = {
    destination = var.bigquery_datasets.destination != "" ? var.bigquery_datasets.destination : local.dataset_base
    staging     = var.bigquery_datasets.staging != "" ? var.bigquery_datasets.staging : "${local.dataset_base}_staging"
    state       = var.bigquery_datasets.state != "" ? var.bigquery_datasets.state : "${local.dataset_base}_state"
  }

  # Pub/Sub push allows at most 600 s before a delivery counts as failed; the
  # loader's request timeout is the same and LOADER_BUDGET stays below it.
  ack_deadline_seconds = 600
}

module "build" {
  source = "../../modules/build"

  project_id               = var.project_id
  region                   = var.region
  repository_id            = local.name
  trigger                  = var.build_trigger
  trigger_name             = local.name
  build_service_account_id = module.iam.names.deployer
  # What cloudbuild.yaml needs to find this environment's repository,
  # service and job.
  substitutions = {
    _ENV         = local.environment
    _REGION      = var.region
    _NAME_PREFIX = var.name_prefix
  }
}

module "bigquery" {
  source = "../../modules/bigquery"

  project_id                    = var.project_id
  location                      = var.bigquery_location
  dataset_ids                   = local.dataset_ids
  staging_table_expiration_days = var.staging_table_expiration_days
  deletion_protection           = local.deletion_protection
}

module "secret" {
  source = "../../modules/secret"

  project_id          = var.project_id
  secret_id           = "${local.name}-pg-password"
  deletion_protection = local.deletion_protection
}

module "iam" {
  source = "../../modules/iam"

  project_id    = var.project_id
  region        = var.region
  name          = local.name
  dataset_ids   = module.bigquery.dataset_ids
  topic_id      = module.pubsub.topic_id
  secret_id     = module.secret.secret_id
  repository_id = module.build.repository_id
  cloud_sql     = var.database.cloud_sql_instance != ""
}

module "pubsub" {
  source = "../../modules/pubsub"

  project_id                 = var.project_id
  name                       = local.name
  push_endpoint              = module.loader.uri
  push_audience              = module.loader.uri
  push_service_account_email = module.iam.emails.push
  push_service_account_name  = module.iam.names.push
  ack_deadline_seconds       = local.ack_deadline_seconds
  max_delivery_attempts      = var.max_delivery_attempts
  grant_agent_token_creator  = var.legacy_pubsub_token_creator
}

module "config" {
  source = "../../modules/config"

  project_id        = var.project_id
  bigquery_location = var.bigquery_location
  dataset_ids       = module.bigquery.dataset_ids
  topic_name        = module.pubsub.topic_name
  database          = var.database
  log_level         = var.log_level
  sync = {
    table            = var.source_table
    id_column        = var.id_column
    timestamp_column = var.timestamp_column
    dest_table       = var.dest_table
    start_date       = var.start_date
    chunk_size       = var.chunk_size
    finish_grace     = var.finish_grace
  }
}

module "loader" {
  source = "../../modules/loader"

  project_id                 = var.project_id
  region                     = var.region
  name                       = "${local.name}-loader"
  image                      = "${module.build.repository_url}/loader:${var.image_tag}"
  env                        = module.config.env
  budget_seconds             = var.loader_budget_seconds
  request_timeout_seconds    = local.ack_deadline_seconds
  max_instances              = var.loader_max_instances
  memory                     = var.loader_memory
  service_account_email      = module.iam.emails.loader
  pg_password_secret         = module.secret.secret_id
  pg_password_secret_version = var.pg_password_secret_version
  cloud_sql_instance         = var.database.cloud_sql_instance
  vpc_egress                 = var.vpc_egress
  invoker_member             = module.iam.members.push
  deployer_member            = module.iam.members.deployer
  deletion_protection        = local.deletion_protection

  # The first revision must be able to read the secret and reach BigQuery.
  depends_on = [module.iam]
}

module "planner" {
  source = "../../modules/planner"

  project_id                      = var.project_id
  region                          = var.region
  name                            = "${local.name}-planner"
  image                           = "${module.build.repository_url}/planner:${var.image_tag}"
  env                             = module.config.env
  max_dates                       = var.planner_max_dates
  schedule                        = var.planner_schedule
  time_zone                       = var.planner_time_zone
  service_account_email           = module.iam.emails.planner
  scheduler_service_account_email = module.iam.emails.scheduler
  deployer_member                 = module.iam.members.deployer
  pg_password_secret              = module.secret.secret_id
  pg_password_secret_version      = var.pg_password_secret_version
  cloud_sql_instance              = var.database.cloud_sql_instance
  vpc_egress                      = var.vpc_egress
  deletion_protection             = local.deletion_protection

  depends_on = [module.iam]
}
