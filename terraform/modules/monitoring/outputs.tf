output "metrics" {
  description = "Log-based metric names by purpose."
  value       = { for k, m in google_logging_metric.this : k => m.name }
}

output "alert_policies" {
  description = "Alert policy display names by purpose."
  value = {
    dead_letter    = google_monitoring_alert_policy.dead_letter.display_name
    oldest_unacked = google_monitoring_alert_policy.oldest_unacked.display_name
    planner_failed = google_monitoring_alert_policy.planner_failed.display_name
    loader_errors  = google_monitoring_alert_policy.loader_errors.display_name
    date_failing   = google_monitoring_alert_policy.date_failing.display_name
    freshness      = google_monitoring_alert_policy.freshness.display_name
  }
}

output "dashboard_id" {
  description = "The dashboard's id."
  value       = google_monitoring_dashboard.sync.id
}
