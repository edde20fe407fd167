# The environment both binaries read (docs/configuration.md), built
# once so the loader and the planner cannot disagree. No resources here.
#
# PG_DSN carries no password: PG_PASSWORD comes from Secret Manager and
# replaces the DSN's. The source is reached either through the Cloud SQL
# connector (a Unix socket under /cloudsql, mounted by Cloud Run) or at a
# host (TCP; a private address needs vpc_egress on the services).

locals {
  db = var.database
  # Where the CA certificate is mounted from Secret Manager (the Cloud Run
  # modules mount pg_ca there) and named by sslrootcert.
  ca_dir  = "/secrets/pg-ca"
  ca_file = "ca.pem"
  ca      = local.db.host != "" && local.db.ca_secret_version != ""
  # The Cloud SQL connector's socket: the connector itself encrypts the
  # connection and authenticates the instance (mutual TLS to the instance
  # it was given), so sslmode on the socket stays disable, as it must.
  pg_dsn_cloud_sql = format(
    "host=/cloudsql/%s port=5432 dbname=%s user=%s sslmode=disable",
    local.db.cloud_sql_instance, local.db.name, local.db.user,
  )
  # A host: TLS that verifies the server (verify-full by default) against
  # the CA from Secret Manager. The host, name and user are validated in
  # envs/*/variables.tf: none can add a parameter to this string.
  pg_dsn_host = format(
    "host=%s port=%d dbname=%s user=%s sslmode=%s%s",
    local.db.host, local.db.port, local.db.name, local.db.user, local.db.sslmode,
    local.ca ? " sslrootcert=${local.ca_dir}/${local.ca_file}" : "",
  )
  pg_dsn  = local.db.cloud_sql_instance != "" ? local.pg_dsn_cloud_sql : local.pg_dsn_host
  pg_host = local.db.cloud_sql_instance != "" ? "/cloudsql/${local.db.cloud_sql_instance}" : local.db.host
  pg_port = local.db.cloud_sql_instance != "" ? 5432 : local.db.port

  all = {
    PG_DSN                  = local.pg_dsn
    PG_ALLOW_UNVERIFIED_TLS = local.db.allow_unverified_tls ? "true" : ""
    SYNC_TABLE              = var.sync.table
    SYNC_TABLES             = length(var.sync.tables) == 0 ? "" : jsonencode([for t in var.sync.tables : { for k, v in t : k => v if v != null }])
    SYNC_ID_COLUMN          = var.sync.id_column
    SYNC_TIMESTAMP_COLUMN   = var.sync.timestamp_column
    SYNC_DEST_TABLE         = var.sync.dest_table
    SYNC_START_DATE         = var.sync.start_date
    SYNC_CHUNK_SIZE         = tostring(var.sync.chunk_size)
    SYNC_FINISH_GRACE       = var.sync.finish_grace
    SYNC_UPDATED_AT_COLUMN  = var.sync.updated_at_column
    SYNC_CHANGES_GRACE      = var.sync.changes_grace
    SYNC_SWEEP_DAYS         = tostring(var.sync.sweep_days)
    BQ_PROJECT              = var.project_id
    BQ_DATASET              = var.dataset_ids.destination
    BQ_STAGING_DATASET      = var.dataset_ids.staging
    BQ_STATE_DATASET        = var.dataset_ids.state
    BQ_LOCATION             = var.bigquery_location
    PUBSUB_PROJECT          = var.project_id
    PUBSUB_TOPIC            = var.topic_name
    LOG_LEVEL               = var.log_level
  }
}

# What the binaries must not be pointed past (config.Pins): the PostgreSQL
# host and port the password goes to, and where the rows go. The planner
# job carries them in its command, which an execution override cannot
# change (docs/security.md).
locals {
  pins = {
    PG_HOST                 = local.pg_host
    PG_PORT                 = tostring(local.pg_port)
    PG_ALLOW_UNVERIFIED_TLS = tostring(local.db.allow_unverified_tls)
    BQ_PROJECT              = var.project_id
    BQ_ENDPOINT             = ""
    BQ_DATASET              = var.dataset_ids.destination
    BQ_STAGING_DATASET      = var.dataset_ids.staging
    BQ_STATE_DATASET        = var.dataset_ids.state
    PUBSUB_PROJECT          = var.project_id
  }
}
