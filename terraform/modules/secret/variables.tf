variable "project_id" {
  description = "Project of the secret."
  type        = string
}

variable "secret_id" {
  description = "Secret id of the PostgreSQL password (injected as PG_PASSWORD)."
  type        = string
}

variable "ca_secret_id" {
  description = "Secret id of the CA certificate that verifies the PostgreSQL server (sslrootcert)."
  type        = string
}

variable "labels" {
  description = "Labels for the secret."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "When true, Terraform refuses to delete the secret."
  type        = bool
}
