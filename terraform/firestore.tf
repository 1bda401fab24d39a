# Firestore (native mode) in the EU, with delete protection and point-in-time recovery, TTL
# policies that expire short-lived records on their own (P21, P22, P27) and the composite indexes
# the code queries with.

resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  point_in_time_recovery_enablement = var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.enabled]
}

locals {
  # collection.field => TTL policy: Firestore deletes a document some time after this timestamp.
  firestore_ttl_fields = {
    "sessions.expires_at"              = { collection = "sessions", field = "expires_at" }
    "verification_tokens.expires_at"   = { collection = "verification_tokens", field = "expires_at" }
    "pending_signups.expires_at"       = { collection = "pending_signups", field = "expires_at" }
    "security_events.expire_at"        = { collection = "security_events", field = "expire_at" }
    "signin_throttle.expire_at"        = { collection = "signin_throttle", field = "expire_at" }
    "idempotency_records.expire_at"    = { collection = "idempotency_records", field = "expire_at" }
    "billing_events_pending.expire_at" = { collection = "billing_events_pending", field = "expire_at" }
  }

  # The retention sweep (shared/retention/sweep.py) reads with `field <= now` ordered by that field
  # and the document id, on each TTL field above, telemetry_*.expire_at, accounts.purge_at,
  # accounts.purge_warning_at and privacy_requests.completed_at: Firestore's automatic single-field
  # indexes serve these queries, so none of these fields may be exempted from indexing.
  firestore_composite_indexes = {
    sessions_by_account = {
      collection = "sessions"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "created_at", order = "DESCENDING" },
      ]
    }
    security_events_by_account = {
      collection = "security_events"
      fields = [
        { field_path = "account_id", order = "ASCENDING" },
        { field_path = "at", order = "DESCENDING" },
      ]
    }
    audit_log_by_account = {
      collection = "audit_log"
      fields = [
        { field_path = "target_account_id", order = "ASCENDING" },
        { field_path = "sequence", order = "DESCENDING" },
      ]
    }
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  database   = google_firestore_database.default.name
  collection = each.value.collection
  field      = each.value.field

  # An empty block enables the TTL policy on this field.
  ttl_config {}
}

resource "google_firestore_index" "composite" {
  for_each = local.firestore_composite_indexes

  database    = google_firestore_database.default.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.field_path
      order      = fields.value.order
    }
  }
}
