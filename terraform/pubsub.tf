# Pub/Sub topics: every topic that triggers an event function or that a function publishes to.
# Event functions are NOT public: Eventarc pushes to them as the pubsub-invoker service account,
# which holds run.invoker on exactly those functions.

locals {
  topics = toset(distinct(concat(
    [for f in local.event_functions : f.topic],
    flatten([for f in local.functions : f.publishes]),
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
