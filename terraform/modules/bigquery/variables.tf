variable "project_id" {
  description = "Project of the datasets (BQ_PROJECT)."
  type        = string
}

variable "location" {
  description = "BigQuery location of all three datasets (BQ_LOCATION), e.g. US, EU or a region."
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

variable "staging_table_expiration_days" {
  description = "Default expiration of tables in the staging dataset, in days."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "When true, destroying a dataset that still holds tables fails instead of deleting them."
  type        = bool
}

variable "labels" {
  description = "Labels for the datasets."
  type        = map(string)
  default     = {}
}

variable "writer_emails" {
  description = "Service account emails that load, stage and checkpoint (WRITER on all three datasets): the runtime identities; the planner too, whose verify --repair rebuilds dates as a loader does."
  type        = list(string)
}

variable "reader_groups" {
  description = "Google groups (emails) that may read the destination dataset (READER). Nobody else reads synced data but project owners."
  type        = list(string)
  default     = []
}
