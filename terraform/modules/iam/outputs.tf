output "emails" {
  description = "Service account emails by component: loader, planner, push, scheduler, deployer."
  value = {
    loader    = google_service_account.loader.email
    planner   = google_service_account.planner.email
    push      = google_service_account.push.email
    scheduler = google_service_account.scheduler.email
    deployer  = google_service_account.deployer.email
  }
}

output "members" {
  description = "IAM members (serviceAccount:EMAIL) by component."
  value = {
    loader    = google_service_account.loader.member
    planner   = google_service_account.planner.member
    push      = google_service_account.push.member
    scheduler = google_service_account.scheduler.member
    deployer  = google_service_account.deployer.member
  }
}

output "names" {
  description = "Service account resource names (projects/P/serviceAccounts/EMAIL) by component."
  value = {
    loader    = google_service_account.loader.name
    planner   = google_service_account.planner.name
    push      = google_service_account.push.name
    scheduler = google_service_account.scheduler.name
    deployer  = google_service_account.deployer.name
  }
}
