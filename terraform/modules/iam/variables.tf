variable "project_id" {
  description = "Project of the service accounts and of the project-level grants."
  type        = string
}

variable "region" {
  description = "Region of the Artifact Registry repository."
  type        = string
}

variable "name" {
  description = "Prefix of the service account ids (<name>-loader, -planner, -push, -scheduler, -deployer); at most 20 characters."
  type        = string
}

variable "dataset_ids" {
  description = "BigQuery dataset ids: destination, staging, state."
  type = object({
    destination = string
    staging     = string
    state       = string
  })
}

variable "topic_id" {
  description = "The dates topic (projects/P/topics/T)."
  type        = string
}

variable "secret_id" {
  description = "Secret id of the PostgreSQL password."
  type        = string
}

variable "repository_id" {
  description = "Artifact Registry repository the deployer pushes to."
  type        = string
}

variable "cloud_sql" {
  description = "Whether the source is reached through the Cloud SQL connector (grants roles/cloudsql.client to loader and planner)."
  type        = bool
}

variable "backfill_topic_id" {
  description = "The back-fill topic (projects/P/topics/T): the loader and the planner publish to it."
  type        = string
}

variable "backfill_subscription" {
  description = "The back-fill pull subscription: the loader pulls from it."
  type        = string
}
