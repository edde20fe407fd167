# The environment both binaries read (docs/configuration.md), built
# once so the loader and the planner cannot disagree. No resources here.
#
# PG_DSN carries no password: PG_PASSWORD comes from Secret Manager and
# replaces the DSN's. The source is reached either through the Cloud SQL
# connector (a Unix socket under /cloudsql, mounted by Cloud Run) or at a
# host (TCP; a private address needs vpc_egress on the services).

locals {
  db = var.database
  pg_dsn_cloud_sql = format(
    "host=/cloudsql/%s port=5432 dbname=%s user=%s sslmode=disable",
    local.db.cloud_sql_instance, local.db.name, local.db.user,
  )
  pg_dsn_host = format(
    "host=%s port=%d dbname=%s user=%s sslmode=%s",
    local.db.host, local.db.port, local.db.name, local.db.user, local.db.sslmode,
  )
  pg_dsn = local.db.cloud_sql_instance != "" ? local.pg_dsn_cloud_sql : local.pg_dsn_host

  all = {
    PG_DSN                = local.pg_dsn
    SYNC_TABLE            = var.sync.table
    SYNC_TABLES           = length(var.sync.tables) == 0 ? "" : jsonencode([for t in var.sync.tables : { for k, v in t : k => v if v != null }])
    SYNC_ID_COLUMN        = var.sync.id_column
    SYNC_TIMESTAMP_COLUMN = var.sync.timestamp_column
    SYNC_DEST_TABLE       = var.sync.dest_table
    SYNC_START_DATE       = var.sync.start_date
    SYNC_CHUNK_SIZE       = tostring(var.sync.chunk_size)
    SYNC_FINISH_GRACE     = var.sync.finish_grace
    BQ_PROJECT            = var.project_id
    BQ_DATASET            = var.dataset_ids.destination
    BQ_STAGING_DATASET    = var.dataset_ids.staging
    BQ_STATE_DATASET      = var.dataset_ids.state
    BQ_LOCATION           = var.bigquery_location
    PUBSUB_PROJECT        = var.project_id
    PUBSUB_TOPIC          = var.topic_name
    LOG_LEVEL             = var.log_level
  }
}
