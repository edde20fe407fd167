output "topic_id" {
  description = "The dates topic (projects/P/topics/T)."
  value       = google_pubsub_topic.dates.id
}

output "topic_name" {
  description = "The dates topic's short name (PUBSUB_TOPIC)."
  value       = google_pubsub_topic.dates.name
}

output "push_subscription" {
  description = "The push subscription delivering dates to the loader."
  value       = google_pubsub_subscription.push.name
}

output "dead_letter_topic" {
  description = "Topic that receives dates whose delivery failed max_delivery_attempts times."
  value       = google_pubsub_topic.dead_letter.name
}

output "dead_letter_subscription" {
  description = "Pull subscription on the dead-letter topic: inspect and replay from here."
  value       = google_pubsub_subscription.dead_letter.name
}

output "backfill_topic" {
  description = "The back-fill topic's short name: run the planner with PUBSUB_TOPIC set to it."
  value       = google_pubsub_topic.backfill.name
}

output "backfill_topic_id" {
  description = "The back-fill topic (projects/P/topics/T)."
  value       = google_pubsub_topic.backfill.id
}

output "backfill_subscription" {
  description = "The pull subscription the loader worker pool consumes."
  value       = google_pubsub_subscription.backfill.name
}
