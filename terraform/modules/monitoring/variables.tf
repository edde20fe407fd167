variable "project_id" {
  description = "Project of the metrics, alert policies and dashboard."
  type        = string
}

variable "name" {
  description = "<name_prefix>-<environment>: prefix of metric names, policy names and the dashboard's title."
  type        = string
}

variable "loader_service" {
  description = "Name of the loader's Cloud Run service, whose logs and requests are watched."
  type        = string
}

variable "backfill_pool" {
  description = "Name of the back-fill Cloud Run worker pool (loader --pull), whose logs are watched."
  type        = string
}

variable "pull_subscription" {
  description = "Name of the back-fill pull subscription the worker pool consumes (backlog and its age)."
  type        = string
}

variable "planner_queued" {
  description = "PLANNER_QUEUED (a duration such as 24h): the back-fill alert fires when a date has waited 3/4 of it."
  type        = string
}

variable "planner_job" {
  description = "Name of the planner's Cloud Run job, whose logs and executions are watched."
  type        = string
}

variable "push_subscription" {
  description = "Name of the subscription that delivers dates to the loader (oldest unacked message)."
  type        = string
}

variable "dead_letter_subscription" {
  description = "Name of the subscription on the dead-letter topic (non-empty means a date was given up)."
  type        = string
}

variable "notification_channels" {
  description = "Notification channel ids (projects/P/notificationChannels/N) every alert notifies; empty: alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

variable "runbook_url" {
  description = "URL of the runbook page (docs/runbook.md); each alert links to its own heading (#anchor appended)."
  type        = string
}

variable "freshness_lag_hours" {
  description = "Alert when a table's newest finished date ended longer ago than this many hours (the planner's table status, freshness_lag_s)."
  type        = number
  default     = 30
}

variable "oldest_unacked_seconds" {
  description = "Alert when the push subscription's oldest unacknowledged message is older than this."
  type        = number
  default     = 7200
}

variable "loader_error_ratio" {
  description = "Alert when more than this fraction of the loader's requests answer 5xx over 15 minutes."
  type        = number
  default     = 0.2
}

variable "date_failures" {
  description = "Alert when one (table, date) logs \"date failed\" more than this many times within 6 hours."
  type        = number
  default     = 2
}
