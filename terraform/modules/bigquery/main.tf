# Datasets only. pgbq creates its own tables when it starts (destination,
# per-date staging tables, sync_control_log and the sync_control view): the
# destination's schema is derived from the PostgreSQL table at run time, so
# Terraform cannot know it, and a schema written here would drift from the
# source. Terraform owns the datasets, their settings and who may use them.
#
# Who may use them is listed here, in full: a dataset created without
# access entries gets BigQuery's defaults, which let every project viewer
# read it (projectReaders) and every editor write it (projectWriters)
# (https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets#Dataset.FIELDS.access).
# The access blocks replace those: project owners own, pgbq's runtime
# identities write, the reader groups read the destination, nobody else.
# Roles in their legacy form (OWNER, WRITER, READER): the API returns them
# so, and another form would show a difference on every plan.

resource "google_bigquery_dataset" "destination" {
  project     = var.project_id
  dataset_id  = var.dataset_ids.destination
  location    = var.location
  description = "pgbq destination: day-partitioned copies of PostgreSQL tables. Tables are created and owned by pgbq."
  labels      = var.labels

  # No default table or partition expiration: this is the data.
  # With deletion protection, destroying a dataset that still holds tables fails.
  delete_contents_on_destroy = !var.deletion_protection

  access {
    role          = "OWNER"
    special_group = "projectOwners"
  }

  dynamic "access" {
    for_each = var.writer_emails
    content {
      role          = "WRITER"
      user_by_email = access.value
    }
  }

  dynamic "access" {
    for_each = var.reader_groups
    content {
      role           = "READER"
      group_by_email = access.value
    }
  }
}

resource "google_bigquery_dataset" "staging" {
  project     = var.project_id
  dataset_id  = var.dataset_ids.staging
  location    = var.location
  description = "pgbq staging: one table per (table, date) until it is published. Safe to lose: a lost table costs a re-sync of its date."
  labels      = var.labels

  # pgbq sets the same expiration on each staging table it creates; this
  # default also covers tables created by hand or by an older pgbq.
  default_table_expiration_ms = var.staging_table_expiration_days * 24 * 60 * 60 * 1000
  # Staging tables churn; keep the time-travel window (and its storage) short.
  max_time_travel_hours      = "48"
  delete_contents_on_destroy = !var.deletion_protection

  access {
    role          = "OWNER"
    special_group = "projectOwners"
  }

  dynamic "access" {
    for_each = var.writer_emails
    content {
      role          = "WRITER"
      user_by_email = access.value
    }
  }
}

resource "google_bigquery_dataset" "state" {
  project     = var.project_id
  dataset_id  = var.dataset_ids.state
  location    = var.location
  description = "pgbq state: sync_control_log (append-only checkpoints) and the sync_control view."
  labels      = var.labels

  delete_contents_on_destroy = !var.deletion_protection

  access {
    role          = "OWNER"
    special_group = "projectOwners"
  }

  dynamic "access" {
    for_each = var.writer_emails
    content {
      role          = "WRITER"
      user_by_email = access.value
    }
  }
}
