output "dataset_ids" {
  description = "Dataset ids: destination, staging, state."
  value = {
    destination = google_bigquery_dataset.destination.dataset_id
    staging     = google_bigquery_dataset.staging.dataset_id
    state       = google_bigquery_dataset.state.dataset_id
  }
}
