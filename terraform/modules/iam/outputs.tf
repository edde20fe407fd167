output "emails" {
  description = "Service account emails by component: loader, backfill, planner, push, scheduler, deployer, tester."
  value = {
    loader    = google_service_account.loader.email
    backfill  = google_service_account.backfill.email
    planner   = google_service_account.planner.email
    push      = google_service_account.push.email
    scheduler = google_service_account.scheduler.email
    deployer  = google_service_account.deployer.email
    tester    = google_service_account.tester.email
  }
}

output "members" {
  description = "IAM members (serviceAccount:EMAIL) by component."
  value = {
    loader    = google_service_account.loader.member
    backfill  = google_service_account.backfill.member
    planner   = google_service_account.planner.member
    push      = google_service_account.push.member
    scheduler = google_service_account.scheduler.member
    deployer  = google_service_account.deployer.member
    tester    = google_service_account.tester.member
  }
}

output "names" {
  description = "Service account resource names (projects/P/serviceAccounts/EMAIL) by component."
  value = {
    loader    = google_service_account.loader.name
    backfill  = google_service_account.backfill.name
    planner   = google_service_account.planner.name
    push      = google_service_account.push.name
    scheduler = google_service_account.scheduler.name
    deployer  = google_service_account.deployer.name
    tester    = google_service_account.tester.name
  }
}

output "runtime_emails" {
  description = "The runtime identities' emails, known only once their project, secret and Pub/Sub grants exist: a Cloud Run resource created with one can read the secret and reach BigQuery from its first revision. This orders them after the grants without a module-level depends_on (which would defer the data sources of the modules that wait). Dataset access is on the datasets, which the services' environment already waits for."
  value = {
    loader   = google_service_account.loader.email
    backfill = google_service_account.backfill.email
    planner  = google_service_account.planner.email
  }
  depends_on = [
    google_project_iam_member.bigquery_jobs,
    google_project_iam_member.publish_fence,
    google_secret_manager_secret_iam_member.pg_password,
    google_secret_manager_secret_iam_member.pg_ca,
    google_project_iam_member.cloud_sql,
    google_pubsub_topic_iam_member.publishes_dates,
    google_pubsub_topic_iam_member.publishes_backfill,
    google_pubsub_subscription_iam_member.backfill_pulls,
  ]
}
