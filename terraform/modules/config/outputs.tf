output "env" {
  description = "Environment variables for both binaries, unset ones left out. Holds no secret: PG_DSN has no password."
  value       = { for k, v in local.all : k => v if v != "" }
}

output "pin_args" {
  description = "The --pin=NAME=VALUE arguments that fix where the password and the rows may go (config.Pins), sorted by name."
  value       = [for k in sort(keys(local.pins)) : "--pin=${k}=${local.pins[k]}"]
}

output "pg_ca" {
  description = "Where the CA certificate is mounted (dir, file) and its pinned secret version; null when the source needs none (Cloud SQL socket)."
  value       = local.ca ? { dir = local.ca_dir, file = local.ca_file, version = local.db.ca_secret_version } : null
}
