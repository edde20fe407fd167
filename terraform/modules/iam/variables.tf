variable "project_id" {
  description = "Project of the service accounts and of the project-level grants."
  type        = string
}

variable "region" {
  description = "Region of the Artifact Registry repository."
  type        = string
}

variable "name" {
  description = "Prefix of the service account ids (<name>-loader, -backfill, -planner, -push, -scheduler, -deployer, -tester); at most 20 characters."
  type        = string
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

variable "cloud_sql_instance" {
  description = "The Cloud SQL instance (PROJECT:REGION:INSTANCE) the runtime identities may connect to (roles/cloudsql.client conditioned on it); empty: none."
  type        = string
}

variable "ca_secret_id" {
  description = "Secret id of the CA certificate that verifies the PostgreSQL server."
  type        = string
}

variable "backfill_topic_id" {
  description = "The back-fill topic (projects/P/topics/T): the back-fill pool and the planner publish to it."
  type        = string
}

variable "backfill_subscription" {
  description = "The back-fill pull subscription: the back-fill pool pulls from it."
  type        = string
}
