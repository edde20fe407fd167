variable "project_id" {
  description = "Project of the worker pool."
  type        = string
}

variable "region" {
  description = "Region of the worker pool."
  type        = string
}

variable "name" {
  description = "Worker pool name; cloudbuild.yaml deploys <_NAME_PREFIX>-<_ENV>-backfill."
  type        = string
}

variable "labels" {
  description = "Labels for the worker pool."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "Image a newly created pool starts from (the loader's); afterwards Cloud Build owns the image."
  type        = string
}

variable "env" {
  description = "Environment shared with the loader service and the planner (config module output); the pull settings are added here."
  type        = map(string)
}

variable "topic_name" {
  description = "The back-fill topic's short name (PUBSUB_TOPIC of the pool)."
  type        = string
}

variable "subscription_name" {
  description = "The back-fill pull subscription (PUBSUB_SUBSCRIPTION)."
  type        = string
}

variable "instance_count" {
  description = "Instances of the pool (manual scaling): 0 when no back-fill runs."
  type        = number
}

variable "max_outstanding" {
  description = "Dates one instance works at once (flow control)."
  type        = number
  default     = 2
}

variable "cpu" {
  description = "CPU limit of an instance."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of an instance; a date's chunk is held in memory (250,000 rows peak under 300 MB)."
  type        = string
}

variable "service_account_email" {
  description = "Identity the pool runs as (the loader's)."
  type        = string
}

variable "pg_password_secret" {
  description = "Secret id of the PostgreSQL password (PG_PASSWORD)."
  type        = string
}

variable "pg_password_secret_version" {
  description = "Pinned version of that secret."
  type        = string
}

variable "cloud_sql_instance" {
  description = "PROJECT:REGION:INSTANCE to mount the Cloud SQL connector for, or empty."
  type        = string
}

variable "vpc_egress" {
  description = "Direct VPC egress (network, subnetwork); null: none."
  type = object({
    network    = string
    subnetwork = string
  })
}

variable "deployer_member" {
  description = "Cloud Build's identity, granted roles/run.developer on this pool only."
  type        = string
}

variable "deletion_protection" {
  description = "Whether the pool refuses to be destroyed."
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
