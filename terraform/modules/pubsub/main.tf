# The dates topic (one message per (table, date), from the planner and from
# loaders handing over the rest of a long date), the push subscription that
# delivers it to the loader, the back-fill topic and its pull subscription
# for the loader worker pool, and dead-lettering.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Pub/Sub's service agent forwards undeliverable messages to the
  # dead-letter topic: it needs publisher there and subscriber on the
  # source subscription, or nothing is dead-lettered.
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "dates" {
  project = var.project_id
  name    = "${var.name}-dates"
  labels  = var.labels
}

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dates-dead-letter"
  labels  = var.labels
}

resource "google_pubsub_subscription" "push" {
  project = var.project_id
  name    = "${var.name}-loader-push"
  topic   = google_pubsub_topic.dates.id
  labels  = var.labels

  # A push request not answered within the ack deadline counts as failed and
  # is redelivered; the loader answers within its work budget, well below.
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = var.push_endpoint
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = var.push_audience
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire, however long no date arrives.
  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.agent_publishes_dead_letters]
}

# Back-fills: the planner run by hand with PUBSUB_TOPIC set to this topic
# (docs/deploy.md) publishes dates here, and the loader worker pool pulls
# them. A backlog larger than the pool waits here: a pulled message's lease
# is extended by the client for as long as its date takes, so waiting costs
# no delivery attempt and only real failures count towards dead-lettering.
resource "google_pubsub_topic" "backfill" {
  project = var.project_id
  name    = "${var.name}-backfill-dates"
  labels  = var.labels
}

resource "google_pubsub_subscription" "backfill" {
  project = var.project_id
  name    = "${var.name}-loader-pull"
  topic   = google_pubsub_topic.backfill.id
  labels  = var.labels

  # What the client's lease extension renews; a crashed worker's date is
  # redelivered after this.
  ack_deadline_seconds       = var.pull_ack_deadline_seconds
  message_retention_duration = "604800s"

  # An acked date is not redelivered: two workers never sync one date
  # after an ack succeeded.
  enable_exactly_once_delivery = true

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_pubsub_topic_iam_member.agent_publishes_dead_letters]
}

resource "google_pubsub_subscription_iam_member" "agent_forwards_from_backfill" {
  project      = var.project_id
  subscription = google_pubsub_subscription.backfill.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Without a subscription, messages published to the dead-letter topic are
# dropped. Pull it to inspect or replay (docs/deploy.md).
resource "google_pubsub_subscription" "dead_letter" {
  project = var.project_id
  name    = "${var.name}-dates-dead-letter"
  topic   = google_pubsub_topic.dead_letter.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_forwards_from_push" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Projects created before 8 April 2021 also need Pub/Sub's agent to mint
# OIDC tokens for the push identity.
resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  count = var.grant_agent_token_creator ? 1 : 0

  service_account_id = var.push_service_account_name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}
