# The loader: a private Cloud Run service that Pub/Sub pushes one date to per
# request. One request works for at most LOADER_BUDGET, then hands the rest
# of its date to a continuation message and answers 2xx, so it always answers
# within the push ack deadline (= the request timeout here).
#
# Who owns what: Terraform owns the service and every setting except the
# container image; Cloud Build (cloudbuild.yaml) rolls new images out with
# `gcloud run deploy --image`. var.image is only the image a newly created
# service starts from.

locals {
  env = merge(var.env, {
    LOADER_BUDGET = "${var.budget_seconds}s"
  })
  cloud_sql = var.cloud_sql_instance == "" ? [] : [var.cloud_sql_instance]
  pg_ca     = var.pg_ca == null ? [] : [var.pg_ca]
}

resource "google_cloud_run_v2_service" "loader" {
  project     = var.project_id
  name        = var.name
  location    = var.region
  description = "pgbq loader: syncs one (table, date) per Pub/Sub push request."
  labels      = var.labels

  # Reachable only from inside the project (Pub/Sub push counts as internal)
  # and only by identities holding roles/run.invoker: no public access.
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection

  template {
    service_account = var.service_account_email
    timeout         = "${var.request_timeout_seconds}s"
    # One date per instance: a chunk of 250,000 rows is held in memory while
    # the next is read, and the fan-out is then exactly max_instances dates.
    max_instance_request_concurrency = var.requests_per_instance

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      # Resolved when an instance starts: pinned, never "latest", so a new
      # password reaches the service only through a deliberate apply.
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

      # The loader connects to PostgreSQL and BigQuery before it listens.
      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 10
        timeout_seconds   = 5
        failure_threshold = 15
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

  lifecycle {
    # Cloud Build owns the image (and marks the revisions it deploys).
    ignore_changes = [
      client,
      client_version,
      template[0].containers[0].image,
    ]
  }
}

# Pub/Sub's push identity may invoke the loader; nobody else is granted it.
resource "google_cloud_run_v2_service_iam_member" "push_invokes_loader" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.loader.name
  role     = "roles/run.invoker"
  member   = var.invoker_member
}

# Cloud Build rolls new images out onto this service.
resource "google_cloud_run_v2_service_iam_member" "deployer_updates_loader" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.loader.name
  role     = "roles/run.developer"
  member   = var.deployer_member
}
