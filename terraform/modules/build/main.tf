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

  # A tag, once pushed, names that image for good: nobody can point a
  # deployed commit's tag at other bytes (a rebuild of the same commit keeps
  # the first image; cloudbuild.yaml's push steps allow for that).
  docker_config {
    immutable_tags = true
  }

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

# Optional: the Cloud Build triggers for this environment, on a repository
# already connected to Cloud Build (2nd gen), both on the same pushes.
# Without them, create them by hand (docs/deploy.md) with the same
# service accounts and substitutions.
#
# test: cloudbuild-test.yaml (vet, every test, Terraform's checks) as the
# tester, which holds no right but writing its logs: third-party code
# (modules, packages, Terraform providers) never runs with deploy rights.
resource "google_cloudbuild_trigger" "test" {
  count = var.trigger == null ? 0 : 1

  project         = var.project_id
  location        = var.region
  name            = "${var.trigger_name}-test"
  description     = "Test pgbq (${var.trigger_name}): vet, tests, Terraform checks; no deploy rights."
  filename        = "cloudbuild-test.yaml"
  service_account = var.test_service_account_id

  repository_event_config {
    repository = var.trigger.repository
    push {
      branch = var.trigger.branch_regex
      tag    = var.trigger.tag_regex
    }
  }
}

# deploy: cloudbuild.yaml as the deployer: waits for the test build of its
# commit to pass, then builds, pushes and deploys. With require_approval
# (prod) a build waits for a person holding roles/cloudbuild.builds.approver
# to approve it before it starts
# (https://cloud.google.com/build/docs/securing-builds/gate-builds-on-approval).
resource "google_cloudbuild_trigger" "deploy" {
  count = var.trigger == null ? 0 : 1

  project         = var.project_id
  location        = var.region
  name            = var.trigger_name
  description     = "Build and deploy pgbq (${var.trigger_name}) once its test build passed."
  filename        = "cloudbuild.yaml"
  service_account = var.build_service_account_id
  substitutions   = var.substitutions

  approval_config {
    approval_required = var.require_approval
  }

  repository_event_config {
    repository = var.trigger.repository
    push {
      branch = var.trigger.branch_regex
      tag    = var.trigger.tag_regex
    }
  }
}
