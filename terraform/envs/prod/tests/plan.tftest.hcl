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
  project_id  = "my-project-prod"
  region      = "us-central1"
  name_prefix = "pgbq"

  image_tag = "0123456789abcdef0123456789abcdef01234567"

  database = {
    name              = "app"
    user              = "pgbq"
    host              = "10.20.0.5"
    port              = 5432
    sslmode           = "verify-full"
    ca_secret_version = "1"
  }

  vpc_egress = {
    network    = "prod-vpc"
    subnetwork = "prod-us-central1"
  }

  pg_password_secret_version = "1"

  source_table = "public.activity_logs"

  loader_max_instances = 20
  planner_schedule     = "0 * * * *"
}

run "plans" {
  command = plan

  assert {
    condition     = output.loader_service == "pgbq-prod-loader"
    error_message = "The loader service is not named pgbq-prod-loader."
  }

  assert {
    condition     = output.planner_job == "pgbq-prod-planner"
    error_message = "The planner job is not named pgbq-prod-planner."
  }

  assert {
    condition     = output.backfill.topic == "pgbq-prod-backfill-dates" && output.backfill.worker_pool == "pgbq-prod-backfill"
    error_message = "The back-fill topic or worker pool is misnamed."
  }

  assert {
    condition     = output.bigquery_datasets.destination == "pgbq_prod"
    error_message = "The destination dataset is not pgbq_prod."
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

run "refuses_tls_that_does_not_verify_the_server" {
  command = plan

  variables {
    database = {
      name    = "app"
      user    = "pgbq"
      host    = "10.20.0.5"
      sslmode = "require"
    }
  }

  expect_failures = [var.database]
}

run "refuses_a_host_that_adds_dsn_parameters" {
  command = plan

  variables {
    database = {
      name              = "app"
      user              = "pgbq"
      host              = "10.20.0.5 sslmode=disable"
      ca_secret_version = "1"
    }
  }

  expect_failures = [var.database]
}
