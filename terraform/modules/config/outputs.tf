output "env" {
  description = "Environment variables for both binaries, unset ones left out. Holds no secret: PG_DSN has no password."
  value       = { for k, v in local.all : k => v if v != "" }
}
