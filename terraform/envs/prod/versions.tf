terraform {
  required_version = "~> 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
  }

  # The state bucket is created once, by hand (docs/deploy.md), and named at
  # init: terraform init -backend-config="bucket=YOUR_STATE_BUCKET"
  backend "gcs" {
    prefix = "pgbq/prod"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "pgbq"
    environment = "prod"
  }
}
