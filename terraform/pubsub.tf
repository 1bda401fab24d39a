# Pub/Sub topics: every topic that triggers an event function or that a function publishes to.
# Event functions are NOT public: Eventarc pushes to them as the pubsub-invoker service account,
# which holds run.invoker on exactly those functions.

locals {
  # Event functions delivered by a push subscription of ours (retries, dead letters), not by Eventarc.
  dead_letter_functions = { for name, f in local.event_functions : name => f if f.dead_letter_after != null }

  topics = toset(distinct(concat(
    [for f in local.event_functions : f.topic],
    flatten([for f in local.functions : f.publishes]),
    [for f in local.dead_letter_functions : "${f.topic}-dead-letter"],
  )))
}

resource "google_pubsub_topic" "app" {
  for_each = local.topics

  name = each.key

  # Messages stay in the EU.
  message_storage_policy {
    allowed_persistence_regions = [var.region]
  }

  message_retention_duration = "86400s"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "pubsub_invoker" {
  account_id   = "pubsub-invoker"
  display_name = "Pub/Sub push to event functions"
  description  = "Identity Eventarc/Pub/Sub uses to invoke the event-triggered functions."

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_run_v2_service_iam_member" "pubsub_invoker" {
  for_each = local.event_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_invoker.email}"
}

# The Pub/Sub service agent mints the OIDC tokens of push subscriptions as pubsub-invoker (needed
# explicitly on projects whose agent predates April 2021; harmless elsewhere). The service identity
# resource makes sure the agent exists before it is granted anything.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.pubsub_invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# --- Push delivery with retries and a dead-letter topic (functions with dead_letter_after) ------
# An Eventarc trigger's subscription cannot dead-letter, so these functions are pushed to by a
# subscription declared here: a failed delivery (5xx: Firestore or the SMTP relay unavailable...) is
# retried with exponential backoff from 10 s to 10 min, and after dead_letter_after attempts the
# message moves to "<topic>-dead-letter", kept 7 days for the team (the Pub/Sub backlog alert in
# monitoring.tf pages on it). Poison messages are acknowledged by the function itself
# (shared/events.py). Delivered this way: privacy-worker (privacy-jobs), telemetry-aggregator
# (telemetry-events), mailer (mail-outbox: the mail every function queues, sent over SMTP) and
# auth-worker (auth-requests: reset and verification links).

resource "google_pubsub_subscription" "push" {
  for_each = local.dead_letter_functions

  name  = "${each.key}-push"
  topic = google_pubsub_topic.app[each.value.topic].id

  ack_deadline_seconds       = min(600, max(10, each.value.timeout))
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.pubsub_invoker.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.app["${each.value.topic}-dead-letter"].id
    max_delivery_attempts = each.value.dead_letter_after
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.pubsub_invoker]
}

resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.dead_letter_functions

  name  = "${each.value.topic}-dead-letter"
  topic = google_pubsub_topic.app["${each.value.topic}-dead-letter"].id

  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub moves a message to the dead-letter topic itself: its service agent publishes there and
# acknowledges the message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.dead_letter_functions

  topic  = google_pubsub_topic.app["${each.value.topic}-dead-letter"].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.dead_letter_functions

  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}
