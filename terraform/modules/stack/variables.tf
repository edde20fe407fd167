# What sets one environment apart (environment, deletion_protection) and the
# inputs a person types, declared, described and validated in envs/*/variables.tf
# and passed through here, grouped by the module they feed.

variable "environment" {
  description = "Environment name: the second part of every resource name (<name_prefix>-<environment>-loader), the default dataset ids, cloudbuild.yaml's _ENV."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,3}$", var.environment))
    error_message = "The environment must be 1 to 4 lowercase letters or digits, starting with a letter, such as dev or prod (service account ids built from it are limited to 30 characters)."
  }
}

variable "require_approval" {
  description = "Whether a deploy build waits for a person's approval (true in prod)."
  type        = bool
}

variable "deletion_protection" {
  description = "Whether the Cloud Run service and job and the secret refuse to be destroyed and the datasets keep their tables on destroy (true in prod)."
  type        = bool
}

variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run service and job, Cloud Scheduler, Artifact Registry and the build trigger."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name; cloudbuild.yaml's _NAME_PREFIX."
  type        = string
}

variable "image_tag" {
  description = "Tag of the images a newly created loader service and planner job start from."
  type        = string
}

variable "database" {
  description = "The source PostgreSQL database: name, user, and cloud_sql_instance or host (with port, sslmode, ca_secret_version); allow_unverified_tls."
  type = object({
    name                 = string
    user                 = string
    cloud_sql_instance   = string
    host                 = string
    port                 = number
    sslmode              = string
    ca_secret_version    = string
    allow_unverified_tls = bool
  })
}

variable "pg_password_secret_version" {
  description = "Pinned version of the PostgreSQL password secret."
  type        = string
}

variable "vpc_egress" {
  description = "Direct VPC egress of the loader and planner (network, subnetwork); null: none."
  type = object({
    network    = string
    subnetwork = string
  })
}

variable "build_trigger" {
  description = "Cloud Build trigger (repository and one of branch_regex or tag_regex); null: none."
  type = object({
    repository   = string
    branch_regex = string
    tag_regex    = string
  })
}

variable "log_level" {
  description = "LOG_LEVEL of both binaries."
  type        = string
}

variable "sync" {
  description = "What is synced and how (SYNC_*): table or tables (SYNC_TABLES), id_column, timestamp_column, dest_table, start_date, chunk_size, finish_grace, updated_at_column, changes_grace, sweep_days."
  type = object({
    table = string
    tables = list(object({
      table            = string
      id_column        = optional(string)
      timestamp_column = optional(string)
      time_zone        = optional(string)
      dest_table       = optional(string)
      start_date       = optional(string)
      chunk_size       = optional(number)
      updated_at       = optional(string)
    }))
    id_column         = string
    timestamp_column  = string
    dest_table        = string
    start_date        = string
    chunk_size        = number
    finish_grace      = string
    updated_at_column = string
    changes_grace     = string
    sweep_days        = number
  })
}

variable "bigquery" {
  description = "BigQuery: location (BQ_LOCATION), datasets (ids; empty ones derived from the name), staging_table_expiration_days, reader_groups (read the destination)."
  type = object({
    location = string
    datasets = object({
      destination = string
      staging     = string
      state       = string
    })
    staging_table_expiration_days = number
    reader_groups                 = list(string)
  })
}

variable "loader" {
  description = "The loader service: max_instances, budget_seconds (LOADER_BUDGET), memory."
  type = object({
    max_instances  = number
    budget_seconds = number
    memory         = string
  })
}

variable "planner" {
  description = "The planner job: schedule (cron), time_zone, max_dates (PLANNER_MAX_DATES), in_flight (PLANNER_IN_FLIGHT), queued (PLANNER_QUEUED), recheck_days (PLANNER_RECHECK_DAYS), quarantine_after (PLANNER_QUARANTINE_AFTER)."
  type = object({
    schedule         = string
    time_zone        = string
    max_dates        = number
    in_flight        = string
    queued           = string
    recheck_days     = number
    quarantine_after = number
  })
}

variable "pubsub" {
  description = "Push delivery: max_delivery_attempts before dead-lettering; legacy_token_creator for projects created before 2021-04-08."
  type = object({
    max_delivery_attempts = number
    legacy_token_creator  = bool
  })
}

variable "monitoring" {
  description = "Monitoring: notification_channels every alert notifies, runbook_url (the runbook page, docs/runbook.md), freshness_lag_hours."
  type = object({
    notification_channels = list(string)
    runbook_url           = string
    freshness_lag_hours   = number
  })
}

variable "backfill" {
  description = "The back-fill worker pool: instances (0: none running), max_outstanding dates per instance."
  type = object({
    instances       = number
    max_outstanding = number
  })
}
