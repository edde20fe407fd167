variable "project_id" {
  description = "Project of the datasets, jobs and topic (BQ_PROJECT, PUBSUB_PROJECT)."
  type        = string
}

variable "bigquery_location" {
  description = "BigQuery location (BQ_LOCATION)."
  type        = string
}

variable "dataset_ids" {
  description = "Dataset ids: destination (BQ_DATASET), staging (BQ_STAGING_DATASET), state (BQ_STATE_DATASET)."
  type = object({
    destination = string
    staging     = string
    state       = string
  })
}

variable "topic_name" {
  description = "The dates topic's short name (PUBSUB_TOPIC)."
  type        = string
}

variable "database" {
  description = "The source database: exactly one of cloud_sql_instance (PROJECT:REGION:INSTANCE) or host (with port, sslmode, ca_secret_version), plus name and user (PG_DSN); allow_unverified_tls sets PG_ALLOW_UNVERIFIED_TLS."
  type = object({
    name               = string
    user               = string
    cloud_sql_instance = optional(string, "")
    host               = optional(string, "")
    port               = optional(number, 5432)
    sslmode            = optional(string, "verify-full")
    # Version of the CA certificate secret (sslrootcert); "": none.
    ca_secret_version = optional(string, "")
    # PG_ALLOW_UNVERIFIED_TLS: accept an sslmode that does not verify the server.
    allow_unverified_tls = optional(bool, false)
  })
}

variable "sync" {
  description = "What is synced and how (SYNC_*): table, or tables (SYNC_TABLES, a JSON array); empty strings leave a variable unset so the binary's default applies."
  type = object({
    table = optional(string, "")
    tables = optional(list(object({
      table            = string
      id_column        = optional(string)
      timestamp_column = optional(string)
      time_zone        = optional(string)
      dest_table       = optional(string)
      start_date       = optional(string)
      chunk_size       = optional(number)
      updated_at       = optional(string)
    })), [])
    id_column        = optional(string, "")
    timestamp_column = optional(string, "")
    dest_table       = optional(string, "")
    start_date       = optional(string, "")
    chunk_size       = optional(number, 250000)
    finish_grace     = optional(string, "")
    # SYNC_UPDATED_AT_COLUMN, SYNC_CHANGES_GRACE, SYNC_SWEEP_DAYS: tables that change (docs/changes.md).
    updated_at_column = optional(string, "")
    changes_grace     = optional(string, "")
    sweep_days        = optional(number, 31)
  })

  validation {
    condition     = (var.sync.table != "") != (length(var.sync.tables) > 0)
    error_message = "Exactly one of the source table (SYNC_TABLE) or tables (SYNC_TABLES) must be set."
  }
}

variable "log_level" {
  description = "LOG_LEVEL: debug, info, warn or error."
  type        = string
  default     = "info"
}
