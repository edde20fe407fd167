output "name" {
  description = "Service name."
  value       = google_cloud_run_v2_service.loader.name
}

output "uri" {
  description = "Service URL: the push endpoint and the OIDC audience."
  value       = google_cloud_run_v2_service.loader.uri
}
