output "name" {
  description = "Job name."
  value       = google_cloud_run_v2_job.planner.name
}

output "scheduler_job" {
  description = "Cloud Scheduler job that runs the planner."
  value       = google_cloud_scheduler_job.planner.name
}
