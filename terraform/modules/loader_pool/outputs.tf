output "name" {
  description = "The worker pool's name."
  value       = google_cloud_run_v2_worker_pool.loader.name
}
