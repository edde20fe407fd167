variable "project_id" {
  description = "Project of the service."
  type        = string
}

variable "region" {
  description = "Region of the service."
  type        = string
}

variable "name" {
  description = "Service name; cloudbuild.yaml deploys to <_NAME_PREFIX>-<_ENV>-loader."
  type        = string
}

variable "labels" {
  description = "Labels for the service."
  type        = map(string)
  default     = {}
}

variable "image" {
  description = "Image a newly created service starts from; afterwards Cloud Build owns the image."
  type        = string
}

variable "env" {
  description = "Environment shared with the planner (config module output); LOADER_BUDGET is added here."
  type        = map(string)
}

variable "budget_seconds" {
  description = "LOADER_BUDGET in seconds: work per request before a continuation takes over; below request_timeout_seconds."
  type        = number
  default     = 480
}

variable "request_timeout_seconds" {
  description = "Request timeout in seconds; equal to the push subscription's ack deadline."
  type        = number
  default     = 600
}

variable "max_instances" {
  description = "Most loader instances: how many dates are synced at once (the fan-out)."
  type        = number
  default     = 10
}

variable "requests_per_instance" {
  description = "Push requests (dates) one instance works at once."
  type        = number
  default     = 1
}

variable "cpu" {
  description = "CPU limit of an instance."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit of an instance (make bench measures the loader's peak RSS at 160-200 MB for 8-column rows and 305-315 MB for 5 MB rows: chunks end at 32 MB, so any row width stays near that; 1Gi leaves room)."
  type        = string
  default     = "1Gi"
}

variable "service_account_email" {
  description = "Identity the loader runs as."
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
  description = "Cloud SQL instance connection name (PROJECT:REGION:INSTANCE) mounted under /cloudsql, or empty when the source is reached by host."
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

variable "invoker_member" {
  description = "The one member allowed to invoke the loader: Pub/Sub's push identity (serviceAccount:EMAIL)."
  type        = string
}

variable "deployer_member" {
  description = "Cloud Build's identity (serviceAccount:EMAIL), allowed to deploy new revisions."
  type        = string
}

variable "deletion_protection" {
  description = "When true, Terraform refuses to delete the service."
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
