# The planner: a Cloud Run job that Cloud Scheduler runs on a cron schedule.
# Each run publishes one message per unfinished date (capped by
# PLANNER_MAX_DATES). Running it twice at once is harmless: Scheduler does not
# prevent it, and dates with a fresh sync_control entry are left alone.
#
# As for the loader, Cloud Build owns the image; Terraform everything else.

locals {
  env = merge(var.env, {
    PLANNER_MAX_DATES        = tostring(var.max_dates)
    PLANNER_IN_FLIGHT        = var.in_flight
    PLANNER_QUEUED           = var.queued
    PLANNER_RECHECK_DAYS     = tostring(var.recheck_days)
    PLANNER_QUARANTINE_AFTER = tostring(var.quarantine_after)
  })
  cloud_sql = var.cloud_sql_instance == "" ? [] : [var.cloud_sql_instance]
  pg_ca     = var.pg_ca == null ? [] : [var.pg_ca]
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_cloud_run_v2_job" "planner" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  labels              = var.labels
  deletion_protection = var.deletion_protection

  template {
    task_count  = 1
    parallelism = 1

    template {
      service_account = var.service_account_email
      timeout         = "${var.timeout_seconds}s"
      # The next scheduled run plans again anyway.
      max_retries = 1

      containers {
        image = var.image
        # The binary (the image's entrypoint) with the deployment's pins:
        # an execution with overrides replaces the arguments and may add
        # variables, but never changes the command, so no override sends
        # the password or the rows past these (config.Pins).
        command = concat(["/app"], var.pin_args)

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }

        dynamic "env" {
          for_each = local.env
          content {
            name  = env.key
            value = env.value
          }
        }

        env {
          name = "PG_PASSWORD"
          value_source {
            secret_key_ref {
              secret  = var.pg_password_secret
              version = var.pg_password_secret_version
            }
          }
        }

        dynamic "volume_mounts" {
          for_each = local.cloud_sql
          content {
            name       = "cloudsql"
            mount_path = "/cloudsql"
          }
        }

        dynamic "volume_mounts" {
          for_each = local.pg_ca
          content {
            name       = "pg-ca"
            mount_path = volume_mounts.value.dir
          }
        }
      }

      dynamic "volumes" {
        for_each = local.cloud_sql
        content {
          name = "cloudsql"
          cloud_sql_instance {
            instances = [volumes.value]
          }
        }
      }

      dynamic "volumes" {
        for_each = local.pg_ca
        content {
          name = "pg-ca"
          secret {
            secret = volumes.value.secret
            items {
              version = volumes.value.version
              path    = volumes.value.file
            }
          }
        }
      }

      dynamic "vpc_access" {
        for_each = var.vpc_egress == null ? [] : [var.vpc_egress]
        content {
          egress = "PRIVATE_RANGES_ONLY"
          network_interfaces {
            network    = vpc_access.value.network
            subnetwork = vpc_access.value.subnetwork
          }
        }
      }
    }
  }

  lifecycle {
    # Cloud Build owns the image (`gcloud run jobs update --image`).
    ignore_changes = [
      client,
      client_version,
      template[0].template[0].containers[0].image,
    ]
  }
}

# Runs the job through the Cloud Run Admin API with an OAuth token of the
# scheduler's own identity, which may run this job and do nothing else.
resource "google_cloud_scheduler_job" "planner" {
  project          = var.project_id
  region           = var.region
  name             = var.name
  description      = "Runs the pgbq planner job ${var.name}."
  schedule         = var.schedule
  time_zone        = var.time_zone
  paused           = var.paused
  attempt_deadline = "180s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = "https://${var.region}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/${data.google_project.this.number}/jobs/${google_cloud_run_v2_job.planner.name}:run"

    oauth_token {
      service_account_email = var.scheduler_service_account_email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }
}

resource "google_cloud_run_v2_job_iam_member" "scheduler_runs_planner" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.planner.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.scheduler_service_account_email}"
}

# Cloud Build rolls new images out onto this job.
resource "google_cloud_run_v2_job_iam_member" "deployer_updates_planner" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_job.planner.name
  role     = "roles/run.developer"
  member   = var.deployer_member
}
