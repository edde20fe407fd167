# The PostgreSQL password. Terraform creates the secret but never its value:
# a value written here would sit in the Terraform state. Add versions with
# gcloud (docs/deploy.md) and pin the version the services use.

resource "google_secret_manager_secret" "pg_password" {
  project   = var.project_id
  secret_id = var.secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  deletion_protection = var.deletion_protection
}

# The CA certificate (PEM) that verifies the PostgreSQL server when it is
# reached at a host (sslrootcert): not secret, but kept beside the password,
# versioned and pinned the same way (gcloud secrets versions add … --data-file=ca.pem).
# Unused (no version needed) on the Cloud SQL connector's socket.
resource "google_secret_manager_secret" "pg_ca" {
  project   = var.project_id
  secret_id = var.ca_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  deletion_protection = var.deletion_protection
}
