output "loader_url" {
  description = "URL of the loader service (private: only the push identity may invoke it)."
  value       = module.loader.uri
}

output "loader_service" {
  description = "Loader Cloud Run service name (cloudbuild.yaml deploys to it)."
  value       = module.loader.name
}

output "planner_job" {
  description = "Planner Cloud Run job name (run it now: gcloud run jobs execute NAME --region REGION)."
  value       = module.planner.name
}

output "dates_topic" {
  description = "The dates topic (PUBSUB_TOPIC)."
  value       = module.pubsub.topic_name
}

output "push_subscription" {
  description = "Push subscription delivering dates to the loader."
  value       = module.pubsub.push_subscription
}

output "dead_letter_topic" {
  description = "Dead-letter topic of the push subscription."
  value       = module.pubsub.dead_letter_topic
}

output "dead_letter_subscription" {
  description = "Pull subscription on the dead-letter topic: inspect and replay dates from here."
  value       = module.pubsub.dead_letter_subscription
}

output "bigquery_datasets" {
  description = "Dataset ids: destination (BQ_DATASET), staging (BQ_STAGING_DATASET), state (BQ_STATE_DATASET)."
  value       = module.bigquery.dataset_ids
}

output "image_repository" {
  description = "Where cloudbuild.yaml pushes the loader and planner images."
  value       = module.build.repository_url
}

output "pg_password_secret" {
  description = "Secret id to add the PostgreSQL password to (gcloud secrets versions add); its value is never in Terraform."
  value       = module.secret.secret_id
}

output "pg_ca_secret" {
  description = "Secret id of the PostgreSQL server's CA certificate."
  value       = module.secret.ca_secret_id
}

output "service_accounts" {
  description = "Service account emails by component."
  value       = module.iam.emails
}

output "build_trigger" {
  description = "Cloud Build trigger name, when managed here."
  value       = module.build.trigger_name
}

output "monitoring" {
  description = "Log-based metrics, alert policies and the dashboard of this environment."
  value = {
    metrics        = module.monitoring.metrics
    alert_policies = module.monitoring.alert_policies
    dashboard_id   = module.monitoring.dashboard_id
  }
}

output "backfill" {
  description = "Back-fill path: the topic to plan into (PUBSUB_TOPIC of a hand-run planner), its pull subscription, the worker pool."
  value = {
    topic        = module.pubsub.backfill_topic
    subscription = module.pubsub.backfill_subscription
    worker_pool  = module.loader_pool.name
  }
}
