output "repository_id" {
  description = "Artifact Registry repository id."
  value       = google_artifact_registry_repository.images.repository_id
}

output "repository_name" {
  description = "Artifact Registry repository resource name (for IAM)."
  value       = google_artifact_registry_repository.images.name
}

output "repository_url" {
  description = "Image path prefix: <region>-docker.pkg.dev/<project>/<repository>."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${google_artifact_registry_repository.images.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "trigger_name" {
  description = "The deploy trigger's name (the test trigger's is it plus -test), or null when no trigger is managed here."
  value       = var.trigger == null ? null : var.trigger_name
}
