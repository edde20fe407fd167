variable "project_id" {
  description = "Project of the repository and the trigger."
  type        = string
}

variable "region" {
  description = "Region of the Artifact Registry repository (the image host is <region>-docker.pkg.dev) and of the trigger."
  type        = string
}

variable "repository_id" {
  description = "Artifact Registry repository id; cloudbuild.yaml pushes to <_NAME_PREFIX>-<_ENV>."
  type        = string
}

variable "labels" {
  description = "Labels for the repository."
  type        = map(string)
  default     = {}
}

variable "keep_images" {
  description = "How many of the most recent image versions are never cleaned up (rollback targets)."
  type        = number
  default     = 20
}

variable "delete_images_after_days" {
  description = "Image versions older than this, beyond the most recent keep_images, are deleted."
  type        = number
  default     = 90
}

variable "trigger" {
  description = "Cloud Build trigger on a connected repository (2nd gen): repository is projects/P/locations/L/connections/C/repositories/R; set exactly one of branch_regex or tag_regex. null: no trigger."
  type = object({
    repository   = string
    branch_regex = optional(string)
    tag_regex    = optional(string)
  })
  default = null
}

variable "trigger_name" {
  description = "Name of the Cloud Build trigger."
  type        = string
}

variable "build_service_account_id" {
  description = "Service account the deploy builds run as (projects/P/serviceAccounts/EMAIL): the deployer."
  type        = string
}

variable "test_service_account_id" {
  description = "Service account the test builds run as (projects/P/serviceAccounts/EMAIL): the tester, without deploy rights."
  type        = string
}

variable "require_approval" {
  description = "Whether a deploy build waits for a person's approval before it starts (prod)."
  type        = bool
}

variable "substitutions" {
  description = "Substitutions the trigger passes to cloudbuild.yaml (_ENV, _REGION, _NAME_PREFIX)."
  type        = map(string)
}
