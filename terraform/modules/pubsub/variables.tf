variable "project_id" {
  description = "Project of the topics and subscriptions (PUBSUB_PROJECT)."
  type        = string
}

variable "name" {
  description = "Name prefix of the topics and subscriptions (<name>-dates, <name>-dates-dead-letter, <name>-loader-push)."
  type        = string
}

variable "labels" {
  description = "Labels for topics and subscriptions."
  type        = map(string)
  default     = {}
}

variable "push_endpoint" {
  description = "URL the push subscription posts to: the loader service's URL."
  type        = string
}

variable "push_audience" {
  description = "Audience of the push request's OIDC token: the loader service's URL."
  type        = string
}

variable "push_service_account_email" {
  description = "Identity of the push requests' OIDC tokens; holds roles/run.invoker on the loader and nothing else."
  type        = string
}

variable "push_service_account_name" {
  description = "Resource name (projects/P/serviceAccounts/EMAIL) of the push identity, for grant_agent_token_creator."
  type        = string
}

variable "ack_deadline_seconds" {
  description = "Push ack deadline in seconds (Pub/Sub allows at most 600); the loader's request timeout equals it."
  type        = number
  default     = 600

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "The ack deadline must be from 10 to 600 seconds (Pub/Sub's limits)."
  }
}

variable "minimum_backoff" {
  description = "Shortest wait before a failed delivery is retried; the wait grows exponentially up to 600s."
  type        = string
  default     = "10s"
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it is dead-lettered (Pub/Sub allows 5..100)."
  type        = number
  default     = 10
}

variable "grant_agent_token_creator" {
  description = "Grant Pub/Sub's service agent roles/iam.serviceAccountTokenCreator on the push identity (needed only in projects created before 2021-04-08)."
  type        = bool
  default     = false
}

variable "pull_ack_deadline_seconds" {
  description = "Ack deadline of the back-fill pull subscription: how soon a crashed worker's date is redelivered (the client extends it while a date is worked on)."
  type        = number
  default     = 60
}
