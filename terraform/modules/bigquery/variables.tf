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
