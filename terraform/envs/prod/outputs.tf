output "loader_url" {
  description = "URL of the loader service (private: only the push identity may invoke it)."
  value       = module.stack.loader_url
}

output "loader_service" {
  description = "Loader Cloud Run service name (cloudbuild.yaml deploys to it)."
  value       = module.stack.loader_service
}

output "planner_job" {
  description = "Planner Cloud Run job name (run it now: gcloud run jobs execute NAME --region REGION)."
  value       = module.stack.planner_job
}

output "dates_topic" {
  description = "The dates topic (PUBSUB_TOPIC)."
  value       = module.stack.dates_topic
}

output "push_subscription" {
  description = "Push subscription delivering dates to the loader."
  value       = module.stack.push_subscription
}

output "dead_letter_topic" {
  description = "Dead-letter topic of the push subscription."
  value       = module.stack.dead_letter_topic
}

output "dead_letter_subscription" {
  description = "Pull subscription on the dead-letter topic: inspect and replay dates from here."
  value       = module.stack.dead_letter_subscription
}

output "bigquery_datasets" {
  description = "Dataset ids: destination (BQ_DATASET), staging (BQ_STAGING_DATASET), state (BQ_STATE_DATASET)."
  value       = module.stack.bigquery_datasets
}

output "image_repository" {
  description = "Where cloudbuild.yaml pushes the loader and planner images."
  value       = module.stack.image_repository
}

output "pg_password_secret" {
  description = "Secret id to add the PostgreSQL password to (gcloud secrets versions add); its value is never in Terraform."
  value       = module.stack.pg_password_secret
}

output "pg_ca_secret" {
  description = "Secret id to add the PostgreSQL server's CA certificate to (gcloud secrets versions add --data-file=ca.pem), for a source at a host."
  value       = module.stack.pg_ca_secret
}

output "service_accounts" {
  description = "Service account emails by component."
  value       = module.stack.service_accounts
}

output "build_trigger" {
  description = "Cloud Build trigger name, when managed here."
  value       = module.stack.build_trigger
}

output "backfill" {
  description = "Back-fill path: topic (plan into it with PUBSUB_TOPIC), pull subscription, worker pool."
  value       = module.stack.backfill
}
