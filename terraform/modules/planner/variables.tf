variable "project_id" {
  description = "Project of the job and the schedule."
  type        = string
}

variable "region" {
  description = "Region of the job and the schedule."
  type        = string
}

variable "name" {
  description = "Job (and scheduler job) name; cloudbuild.yaml updates <_NAME_PREFIX>-<_ENV>-planner."
  type        = string
}

variable "labels" {
  description = "Labels for the job."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "Image a newly created job starts from; afterwards Cloud Build owns the image."
  type        = string
}

variable "env" {
  description = "Environment shared with the loader (config module output); PLANNER_* are added here."
  type        = map(string)
}

variable "max_dates" {
  description = "PLANNER_MAX_DATES: most messages one run publishes."
  type        = number
  default     = 500
}

variable "in_flight" {
  description = "PLANNER_IN_FLIGHT: a date whose newest sync_control entry is younger is left alone."
  type        = string
  default     = "15m"
}

variable "queued" {
  description = "PLANNER_QUEUED: a date planned but not yet started is left alone this long (its message may wait behind a back-fill)."
  type        = string
  default     = "24h"
}

variable "recheck_days" {
  description = "PLANNER_RECHECK_DAYS: each run compares this many finished days before today again."
  type        = number
  default     = 3
}

variable "quarantine_after" {
  description = "PLANNER_QUARANTINE_AFTER: a date that failed this many times is quarantined, no longer planned until `planner resync` (0: never)."
  type        = number
  default     = 3
}

variable "timeout_seconds" {
  description = "Longest a planner run may take, in seconds."
  type        = number
  default     = 1800
}

variable "schedule" {
  description = "Cron schedule of the planner runs (5 fields)."
  type        = string
}

variable "time_zone" {
  description = "Time zone the schedule is read in."
  type        = string
  default     = "Etc/UTC"
}

variable "paused" {
  description = "Pause the schedule (the job can still be run by hand)."
  type        = bool
  default     = false
}

variable "service_account_email" {
  description = "Identity the planner runs as."
  type        = string
}

variable "scheduler_service_account_email" {
  description = "Identity of Cloud Scheduler's calls; granted roles/run.invoker on this job only."
  type        = string
}

variable "deployer_member" {
  description = "Cloud Build's identity (serviceAccount:EMAIL), allowed to update the job's image."
  type        = string
}

variable "pg_password_secret" {
  description = "Secret id of the PostgreSQL password (PG_PASSWORD)."
  type        = string
}

variable "pg_password_secret_version" {
  description = "Pinned version of the password secret (a number, never latest)."
  type        = string
}

variable "cloud_sql_instance" {
  description = "Cloud SQL instance connection name (PROJECT:REGION:INSTANCE) mounted under /cloudsql, or empty."
  type        = string
  default     = ""
}

variable "vpc_egress" {
  description = "Direct VPC egress for a source on a private address: network and subnetwork. null: no VPC access."
  type = object({
    network    = string
    subnetwork = string
  })
  default = null
}

variable "deletion_protection" {
  description = "When true, Terraform refuses to delete the job."
  type        = bool
}

variable "pg_ca" {
  description = "The CA certificate that verifies the PostgreSQL server: secret id, pinned version, and the directory and file name PG_DSN's sslrootcert names (mounted from Secret Manager); null: none."
  type = object({
    secret  = string
    version = string
    dir     = string
    file    = string
  })
  default = null
}

variable "pin_args" {
  description = "The --pin=NAME=VALUE arguments (config module's pin_args) the job's command carries after the binary."
  type        = list(string)
}
