# Where the images live and what builds them. Cloud Build (cloudbuild.yaml)
# pushes <region>-docker.pkg.dev/<project>/<repository>/{loader,planner}:<commit>
# here and deploys them; see the loader and planner modules for why Terraform
# ignores the image after the first apply.

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "pgbq images (loader, planner), tagged with the commit they were built from."
  labels        = var.labels

  # Keep the recent images (rollback targets), drop old ones: storage is billed.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_images
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      tag_state  = "ANY"
      older_than = "${var.delete_images_after_days * 86400}s"
    }
  }
}

# Optional: the Cloud Build trigger for this environment, on a repository
# already connected to Cloud Build (2nd gen). Without it, create the trigger
# by hand (docs/deploy.md) with the same substitutions.
resource "google_cloudbuild_trigger" "deploy" {
  count = var.trigger == null ? 0 : 1

  project         = var.project_id
  location        = var.region
  name            = var.trigger_name
  description     = "Test, build and deploy pgbq (${var.trigger_name})."
  filename        = "cloudbuild.yaml"
  service_account = var.build_service_account_id
  substitutions   = var.substitutions

  repository_event_config {
    repository = var.trigger.repository
    push {
      branch = var.trigger.branch_regex
      tag    = var.trigger.tag_regex
    }
  }
}
