# `terraform test` (cloudbuild.yaml runs it after init and validate): plans
# this environment from example.tfvars' values against a mock google
# provider (no credentials, no calls), and checks that wrong variables are
# refused at plan time. The offline deploy checks (internal/deploycheck)
# evaluate the same configuration without any provider.

mock_provider "google" {
  mock_data "google_project" {
    defaults = {
      number = "123456789012"
    }
  }
}

variables {
  project_id  = "my-project-dev"
  region      = "us-central1"
  name_prefix = "pgbq"

  image_tag = "0123456789abcdef0123456789abcdef01234567"

  database = {
    name               = "app"
    user               = "pgbq"
    cloud_sql_instance = "my-project-dev:us-central1:app-db"
  }

  pg_password_secret_version = "1"

  source_table = "public.activity_logs"
  start_date   = "2024-01-01"

  loader_max_instances = 5
  planner_schedule     = "0 * * * *"
}

run "plans" {
  command = plan

  assert {
    condition     = output.loader_service == "pgbq-dev-loader"
    error_message = "The loader service is not named pgbq-dev-loader."
  }

  assert {
    condition     = output.planner_job == "pgbq-dev-planner"
    error_message = "The planner job is not named pgbq-dev-planner."
  }

  assert {
    condition     = output.backfill.topic == "pgbq-dev-backfill-dates" && output.backfill.worker_pool == "pgbq-dev-backfill"
    error_message = "The back-fill topic or worker pool is misnamed."
  }

  assert {
    condition     = output.bigquery_datasets.destination == "pgbq_dev"
    error_message = "The destination dataset is not pgbq_dev."
  }
}

run "refuses_a_zone_as_region" {
  command = plan

  variables {
    region = "us-central1-a"
  }

  expect_failures = [var.region]
}

run "refuses_an_unpinned_secret_version" {
  command = plan

  variables {
    pg_password_secret_version = "latest"
  }

  expect_failures = [var.pg_password_secret_version]
}
