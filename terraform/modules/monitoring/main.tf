# What watches pgbq (docs/runbook.md): log-based metrics from the
# binaries' structured logs, alert policies that each tell the on-call
# person what to do, and one dashboard. Everything refers to the loader
# service, the back-fill worker pool, the planner job and the subscriptions
# by the names passed in.
#
# The binaries log JSON lines to stdout (internal/logging): Cloud Logging
# keeps them as jsonPayload, message in jsonPayload.message. The loader's
# lines carry table and sync_date; the planner logs one "table status" line
# per table and run.
#
# The loader runs in two places that log under different monitored
# resources: the push service (cloud_run_revision, service_name) and the
# back-fill worker pool (cloud_run_worker_pool, worker_pool_name: the
# resource `gcloud run worker-pools logs read` filters on,
# https://cloud.google.com/sdk/gcloud/reference/run/worker-pools/logs).
# A log-based metric's series belong to the resource of the lines it
# counts, so each loader metric has a twin on the pool (backfill_…): an
# alert or chart then reads one resource type at a time.

locals {
  loader_logs   = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.loader_service}\""
  backfill_logs = "resource.type=\"cloud_run_worker_pool\" AND resource.labels.worker_pool_name=\"${var.backfill_pool}\""
  planner_logs  = "resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"${var.planner_job}\""

  # PLANNER_QUEUED in seconds (a Go duration of h, m and s, as the
  # planner variable's validation allows).
  queued_seconds = (
    try(tonumber(regex("([0-9]+)h", var.planner_queued)[0]), 0) * 3600 +
    try(tonumber(regex("([0-9]+)m", var.planner_queued)[0]), 0) * 60 +
    try(tonumber(regex("([0-9]+)s", var.planner_queued)[0]), 0)
  )

  metrics = merge(
    local.loader_metrics,
    { for k, m in local.loader_metrics : "backfill_${k}" => merge(m, {
      description = "Back-fill pool: ${m.description}"
      logs        = local.backfill_logs
    }) },
    local.planner_metrics,
  )

  # name => what it counts. field: the jsonPayload field whose value is
  # recorded (a distribution); null: the matching lines are counted.
  loader_metrics = {
    chunks_staged = {
      description = "Chunks staged by the loader (one load job each), per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"chunk staged\""
      field       = null
      unit        = "1"
      labels      = ["table"]
    }
    chunk_rows = {
      description = "Rows per staged chunk, per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"chunk staged\""
      field       = "rows"
      unit        = "1"
      labels      = ["table"]
    }
    chunk_load_ms = {
      description = "Duration of a chunk's load job in milliseconds, per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"chunk staged\""
      field       = "load_ms"
      unit        = "ms"
      labels      = ["table"]
    }
    dates_published = {
      description = "Dates whose staging was published into the destination, per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"date published\""
      field       = null
      unit        = "1"
      labels      = ["table"]
    }
    date_duration_ms = {
      description = "Duration of one message's work on a date (chunks and publish) in milliseconds, per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"date processed\""
      field       = "duration_ms"
      unit        = "ms"
      labels      = ["table"]
    }
    stale_publish_jobs_ran = {
      description = "Publish jobs that ran after their loader was gone (found by the fence before the next publish of their days; they ended before it started), per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"stale publish job ran\""
      field       = null
      unit        = "1"
      labels      = ["table"]
    }
    stale_publish_jobs_fenced = {
      description = "Publish jobs of a gone loader that the fence kept from landing (cancelled or failed before the next publish of their days), per table."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"stale publish job fenced\""
      field       = null
      unit        = "1"
      labels      = ["table"]
    }
    date_failures = {
      description = "Dates that failed permanently (recorded failed, re-planned by the next run), per table and date."
      logs        = local.loader_logs
      match       = "jsonPayload.message=\"date failed\""
      field       = null
      unit        = "1"
      labels      = ["table", "sync_date"]
    }
  }

  planner_metrics = {
    dates_quarantined = {
      description = "Dates the planner quarantined (failed PLANNER_QUARANTINE_AFTER times; no longer planned until `planner resync`), per table and date."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"date quarantined\""
      field       = null
      unit        = "1"
      labels      = ["table", "sync_date"]
    }
    stale_dates = {
      description = "Finished dates the planner found differing from the source outside its recheck window (not re-opened by itself), per table and date."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"finished date differs\""
      field       = null
      unit        = "1"
      labels      = ["table", "sync_date"]
    }
    status_dates_total = {
      description = "Planner's table status: dates from the start date to today."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "dates_total"
      unit        = "1"
      labels      = ["table"]
    }
    status_dates_finished = {
      description = "Planner's table status: finished dates."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "dates_finished"
      unit        = "1"
      labels      = ["table"]
    }
    status_dates_failed = {
      description = "Planner's table status: dates whose newest state is failed."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "dates_failed"
      unit        = "1"
      labels      = ["table"]
    }
    status_dates_in_flight = {
      description = "Planner's table status: dates planned or being worked on."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "dates_in_flight"
      unit        = "1"
      labels      = ["table"]
    }
    status_rows_staged_last_hour = {
      description = "Planner's table status: rows staged in the last hour (throughput)."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "rows_staged_last_hour"
      unit        = "1"
      labels      = ["table"]
    }
    status_freshness_lag_s = {
      description = "Planner's table status: seconds since the end of the newest finished date (data freshness)."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "freshness_lag_s"
      unit        = "s"
      labels      = ["table"]
    }
    status_rows_undated = {
      description = "Planner's table status: source rows that belong to no date (timestamp NULL, infinite or outside BigQuery's range), never synced."
      logs        = local.planner_logs
      match       = "jsonPayload.message=\"table status\""
      field       = "rows_undated"
      unit        = "1"
      labels      = ["table"]
    }
  }

  metric_type = { for k, m in google_logging_metric.this : k => "logging.googleapis.com/user/${m.name}" }

  runbook = {
    dead_letter    = "${var.runbook_url}#alert-dates-dead-lettered"
    oldest_unacked = "${var.runbook_url}#alert-backlog-not-draining"
    backfill       = "${var.runbook_url}#alert-back-fill-not-draining"
    planner_failed = "${var.runbook_url}#alert-planner-run-failed"
    loader_errors  = "${var.runbook_url}#alert-loader-error-ratio"
    date_failing   = "${var.runbook_url}#alert-a-date-fails-repeatedly"
    freshness      = "${var.runbook_url}#alert-data-not-fresh"
    stale_dates    = "${var.runbook_url}#alert-finished-dates-differ"
    quarantined    = "${var.runbook_url}#alert-a-date-is-quarantined"
  }
}

resource "google_logging_metric" "this" {
  for_each = local.metrics

  project     = var.project_id
  name        = "${var.name}/${each.key}"
  description = each.value.description
  filter      = "${each.value.logs} AND ${each.value.match}"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.field == null ? "INT64" : "DISTRIBUTION"
    unit        = each.value.unit

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.value
        value_type  = "STRING"
        description = "jsonPayload.${labels.value} of the log line."
      }
    }
  }

  value_extractor  = each.value.field == null ? null : "EXTRACT(jsonPayload.${each.value.field})"
  label_extractors = { for l in each.value.labels : l => "EXTRACT(jsonPayload.${l})" }

  dynamic "bucket_options" {
    for_each = each.value.field == null ? [] : [each.value.field]
    content {
      exponential_buckets {
        num_finite_buckets = 64
        growth_factor      = 2
        scale              = 1
      }
    }
  }
}

# --- alert policies -----------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letter" {
  project               = var.project_id
  display_name          = "${var.name}: dates dead-lettered"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Messages wait in ${var.dead_letter_subscription}"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.dead_letter_subscription}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: dates dead-lettered"
    content   = <<-EOT
      A date's message failed every delivery attempt (the push subscription's max_delivery_attempts) and was moved to the dead-letter subscription ${var.dead_letter_subscription}: that date is not being synced.
      Pull the messages to see which (table, date), read the loader's logs for that date, fix the cause, then replay or let the planner re-plan it.
      Runbook: ${local.runbook.dead_letter}
    EOT
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  project               = var.project_id
  display_name          = "${var.name}: backlog not draining"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Oldest unacked message in ${var.push_subscription} older than ${var.oldest_unacked_seconds}s"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.push_subscription}\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_seconds
      duration        = "600s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: backlog not draining"
    content   = <<-EOT
      The oldest date waiting in ${var.push_subscription} (the hourly push path) is older than ${var.oldest_unacked_seconds} seconds: the loader service does not keep up or keeps failing the same messages, and each failed push spends a delivery attempt.
      Read the loader service's "date interrupted" lines and its 5xx/429 responses; if many dates were pushed at once (a new table with history), plan them into the back-fill path instead.
      Runbook: ${local.runbook.oldest_unacked}
    EOT
  }
}

resource "google_monitoring_alert_policy" "backfill_backlog" {
  project               = var.project_id
  display_name          = "${var.name}: back-fill not draining"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "Oldest unacked message in ${var.pull_subscription} older than 3/4 of PLANNER_QUEUED (${local.queued_seconds * 3 / 4}s)"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${var.pull_subscription}\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = local.queued_seconds * 3 / 4
      duration        = "600s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: back-fill not draining"
    content   = <<-EOT
      A date has waited in the back-fill subscription ${var.pull_subscription} for more than 3/4 of PLANNER_QUEUED (${var.planner_queued}). Once it has waited PLANNER_QUEUED, the hourly planner publishes it again to the push path, where a large backlog burns delivery attempts.
      Check that the worker pool ${var.backfill_pool} has instances (backfill_loaders) and that its "date processed" lines keep coming; then add loaders, or raise planner_queued for the back-fill's duration.
      Runbook: ${local.runbook.backfill}
    EOT
  }
}

resource "google_monitoring_alert_policy" "planner_failed" {
  project               = var.project_id
  display_name          = "${var.name}: planner run failed"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "A ${var.planner_job} execution failed"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"${var.planner_job}\" AND metric.type=\"run.googleapis.com/job/completed_execution_count\" AND metric.labels.result=\"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: planner run failed"
    content   = <<-EOT
      An execution of the planner job ${var.planner_job} ended in failure: no dates were planned by that run.
      Read the execution's logs (severity ERROR), fix the cause (source unreachable, BigQuery permission, configuration), then run the job by hand.
      Runbook: ${local.runbook.planner_failed}
    EOT
  }
}

resource "google_monitoring_alert_policy" "loader_errors" {
  project               = var.project_id
  display_name          = "${var.name}: loader error ratio"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "More than ${var.loader_error_ratio * 100}% of ${var.loader_service}'s requests answer 5xx"
    condition_threshold {
      filter             = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.loader_service}\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.loader_service}\" AND metric.type=\"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.loader_error_ratio
      duration           = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: loader error ratio"
    content   = <<-EOT
      Over 15 minutes more than ${var.loader_error_ratio * 100}% of the loader's push requests failed: each is a delivery attempt spent, and dates may be dead-lettered.
      Read the loader's WARNING/ERROR lines ("date interrupted", "date failed"): BigQuery quotas, the source unreachable, or instances busy (429).
      Runbook: ${local.runbook.loader_errors}
    EOT
  }
}

resource "google_monitoring_alert_policy" "date_failing" {
  project               = var.project_id
  display_name          = "${var.name}: a date fails repeatedly"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "One (table, date) failed more than ${var.date_failures} times in 6 h"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"${local.metric_type.date_failures}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.date_failures
      duration        = "0s"
      aggregations {
        alignment_period     = "21600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.table", "metric.label.sync_date"]
      }
    }
  }

  conditions {
    display_name = "On the back-fill pool, one (table, date) failed more than ${var.date_failures} times in 6 h"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_worker_pool\" AND metric.type=\"${local.metric_type.backfill_date_failures}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.date_failures
      duration        = "0s"
      aggregations {
        alignment_period     = "21600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.table", "metric.label.sync_date"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: a date fails repeatedly"
    content   = <<-EOT
      The same (table, date) failed permanently more than ${var.date_failures} times in 6 hours, on the loader service or on the back-fill pool; every planner run re-plans it and it fails again.
      The incident's labels name the table and date; the loader's "date failed" line says why (a column that cannot travel, a mismatch after three re-syncs).
      Runbook: ${local.runbook.date_failing}
    EOT
  }
}

resource "google_monitoring_alert_policy" "date_quarantined" {
  project               = var.project_id
  display_name          = "${var.name}: a date is quarantined"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "The planner quarantined a (table, date)"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_job\" AND metric.type=\"${local.metric_type.dates_quarantined}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.table", "metric.label.sync_date"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: a date is quarantined"
    content   = <<-EOT
      A (table, date) failed PLANNER_QUARANTINE_AFTER times and the planner stopped planning it: its rows are missing from BigQuery until someone acts.
      The incident's labels name the table and date; `planner status --state quarantined` shows the last failure's detail. Fix the cause, then release the date with `planner resync --table T --from D --reason "…"`.
      Runbook: ${local.runbook.quarantined}
    EOT
  }
}

resource "google_monitoring_alert_policy" "stale_dates" {
  project               = var.project_id
  display_name          = "${var.name}: finished dates differ"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "The planner found a finished date whose rows differ from the source"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_job\" AND metric.type=\"${local.metric_type.stale_dates}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.table", "metric.label.sync_date"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: finished dates differ"
    content   = <<-EOT
      A date finished long ago (older than the planner's recheck window) no longer matches the source: rows reached it late, or were changed or deleted in PostgreSQL. The planner does not rebuild old dates by itself.
      The incident's labels name the table and date; the planner's "finished date differs" line shows both fingerprints and the command that rebuilds the date.
      Runbook: ${local.runbook.stale_dates}
    EOT
  }
}

resource "google_monitoring_alert_policy" "freshness" {
  project               = var.project_id
  display_name          = "${var.name}: data not fresh"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = var.notification_channels

  conditions {
    display_name = "A table's newest finished date ended more than ${var.freshness_lag_hours} h ago"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_job\" AND metric.type=\"${local.metric_type.status_freshness_lag_s}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.freshness_lag_hours * 3600
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_MEAN"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["metric.label.table"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "${var.name}: data not fresh"
    content   = <<-EOT
      A table's newest finished date ended more than ${var.freshness_lag_hours} hours ago: readers of the destination do not see recent days.
      Check the planner's "table status" line for that table (oldest_unfinished, dates_failed, dates_in_flight) and the other alerts.
      Runbook: ${local.runbook.freshness}
    EOT
  }
}

# --- dashboard ----------------------------------------------------------------

locals {
  # One chart: title, and data sets of [metric type, resource type, aligner,
  # reducer, alignment period, group by]: per table for pgbq's own metrics,
  # per subscription for Pub/Sub's.
  charts = [
    { title = "Back-fill progress: dates finished / total", sets = [
      [local.metric_type.status_dates_finished, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
      [local.metric_type.status_dates_total, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
    ] },
    { title = "Dates failed and in flight", sets = [
      [local.metric_type.status_dates_failed, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
      [local.metric_type.status_dates_in_flight, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
    ] },
    { title = "Throughput: rows staged in the last hour", sets = [
      [local.metric_type.status_rows_staged_last_hour, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
    ] },
    { title = "Chunks staged per second: loader service, back-fill pool", sets = [
      [local.metric_type.chunks_staged, "cloud_run_revision", "ALIGN_RATE", "REDUCE_SUM", "300s", "metric.label.table"],
      [local.metric_type.backfill_chunks_staged, "cloud_run_worker_pool", "ALIGN_RATE", "REDUCE_SUM", "300s", "metric.label.table"],
    ] },
    { title = "Back-fill backlog: dates waiting, oldest age (s)", sets = [
      ["pubsub.googleapis.com/subscription/num_undelivered_messages", "pubsub_subscription", "ALIGN_MAX", "REDUCE_MAX", "300s", "resource.label.subscription_id", var.pull_subscription],
      ["pubsub.googleapis.com/subscription/oldest_unacked_message_age", "pubsub_subscription", "ALIGN_MAX", "REDUCE_MAX", "300s", "resource.label.subscription_id", var.pull_subscription],
    ] },
    { title = "Lag: seconds since the newest finished date ended", sets = [
      [local.metric_type.status_freshness_lag_s, "cloud_run_job", "ALIGN_MEAN", "REDUCE_MAX", "3600s", "metric.label.table"],
    ] },
    { title = "Rows without a date (never synced)", sets = [
      [local.metric_type.status_rows_undated, "cloud_run_job", "ALIGN_MEAN", "REDUCE_SUM", "3600s", "metric.label.table"],
    ] },
    { title = "Errors: dates failed per hour (loader service, back-fill pool)", sets = [
      [local.metric_type.date_failures, "cloud_run_revision", "ALIGN_SUM", "REDUCE_SUM", "3600s", "metric.label.table"],
      [local.metric_type.backfill_date_failures, "cloud_run_worker_pool", "ALIGN_SUM", "REDUCE_SUM", "3600s", "metric.label.table"],
    ] },
    { title = "Load job duration (p99, ms)", sets = [
      [local.metric_type.chunk_load_ms, "cloud_run_revision", "ALIGN_PERCENTILE_99", "REDUCE_MAX", "300s", "metric.label.table"],
    ] },
    { title = "Date work per message (p99, ms): loader service, back-fill pool", sets = [
      [local.metric_type.date_duration_ms, "cloud_run_revision", "ALIGN_PERCENTILE_99", "REDUCE_MAX", "300s", "metric.label.table"],
      [local.metric_type.backfill_date_duration_ms, "cloud_run_worker_pool", "ALIGN_PERCENTILE_99", "REDUCE_MAX", "300s", "metric.label.table"],
    ] },
  ]
}

resource "google_monitoring_dashboard" "sync" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "pgbq ${var.name}"
    mosaicLayout = {
      columns = 48
      tiles = [for i, c in local.charts : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = {
          title = c.title
          xyChart = {
            dataSets = [for s in c.sets : {
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "metric.type=\"${s[0]}\" resource.type=\"${s[1]}\"${try(" resource.labels.subscription_id=\"${s[6]}\"", "")}"
                  aggregation = {
                    alignmentPeriod    = s[4]
                    perSeriesAligner   = s[2]
                    crossSeriesReducer = s[3]
                    groupByFields      = [s[5]]
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })
}
