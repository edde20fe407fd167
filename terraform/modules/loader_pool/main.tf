# The back-fill loaders: a Cloud Run worker pool of `loader --pull`
# instances holding a StreamingPull on the back-fill subscription (pubsub
# module). A fixed number of instances (var.instance_count; 0 when no
# back-fill runs, and nothing is billed) each work at most
# var.max_outstanding dates at once; the client library extends each
# message's lease for as long as its date takes, so the backlog waits in
# Pub/Sub instead of spending delivery attempts, and no work budget or
# continuation message is needed here. The steady hourly path stays the
# push service (loader module).
#
# As for the service, Cloud Build owns the image (`gcloud beta run
# worker-pools deploy --image`); Terraform everything else.

locals {
  env = merge(var.env, {
    # The back-fill's own topic and subscription: a continuation (should
    # one be published) stays on the pull path.
    PUBSUB_TOPIC        = var.topic_name
    PUBSUB_SUBSCRIPTION = var.subscription_name
    # Flow control: messages one instance holds at once (the client's
    # MaxOutstandingMessages).
    LOADER_CONCURRENCY = tostring(var.max_outstanding)
  })
  cloud_sql = var.cloud_sql_instance == "" ? [] : [var.cloud_sql_instance]
  pg_ca     = var.pg_ca == null ? [] : [var.pg_ca]
}

resource "google_cloud_run_v2_worker_pool" "loader" {
  project             = var.project_id
  name                = var.name
  location            = var.region
  description         = "pgbq back-fill loaders: pull dates from the back-fill subscription."
  labels              = var.labels
  deletion_protection = var.deletion_protection

  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.instance_count
  }

  template {
    service_account = var.service_account_email

    containers {
      image = var.image
      args  = ["--pull"]

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
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

  lifecycle {
    # Cloud Build owns the image (`gcloud beta run worker-pools deploy --image`).
    ignore_changes = [
      client,
      client_version,
      template[0].containers[0].image,
    ]
  }
}

# Cloud Build rolls new images out onto this pool.
resource "google_cloud_run_v2_worker_pool_iam_member" "deployer_updates_pool" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_worker_pool.loader.name
  role     = "roles/run.developer"
  member   = var.deployer_member
}
