output "secret_id" {
  description = "Secret id of the PostgreSQL password (not its value)."
  value       = google_secret_manager_secret.pg_password.secret_id
}

output "secret_name" {
  description = "Secret resource name, projects/P/secrets/S (not its value)."
  value       = google_secret_manager_secret.pg_password.name
}

output "ca_secret_id" {
  description = "Secret id of the PostgreSQL server's CA certificate."
  value       = google_secret_manager_secret.pg_ca.secret_id
}
