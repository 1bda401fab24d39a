# Telemetry and web analytics (P12, P23): the raw product-event archive, the TTL and index settings of
# the telemetry collections, and the knobs of the telemetry functions (functions.tf) and of their
# Cloud Armor rule (armor.tf).
#
# - The archive keeps raw product events 90 days (lifecycle rule), nothing longer: no versioning, no
#   soft delete (an erasure must really delete, P11). The aggregator may only create objects; the
#   privacy-worker reads and deletes them for exports and erasures (shared/datamap.py).
# - telemetry-events is delivered to the aggregator by a push subscription with a retry policy and
#   a dead-letter topic (pubsub.tf, `dead_letter_after` in functions.tf).
# - The telemetry function is never logged at the load balancer (lb_logging = false): client IPs
#   of analytics requests appear in no log (P23).

locals {
  telemetry_env = {
    TELEMETRY_SITES          = join(",", var.telemetry_sites)
    TELEMETRY_ARCHIVE_BUCKET = google_storage_bucket.telemetry_archive.name
    TELEMETRY_COUNTER_SHARDS = tostring(var.telemetry_counter_shards)
  }
}

variable "telemetry_sites" {
  description = "Sites (host names) that may send anonymous web analytics to /telemetry/events."
  type        = list(string)
  default     = ["wizyvision.com"]
}

variable "telemetry_counter_shards" {
  description = "Shards of each daily telemetry counter document (more for busier sites)."
  type        = number
  default     = 4

  validation {
    condition     = var.telemetry_counter_shards >= 1 && var.telemetry_counter_shards <= 64
    error_message = "Between 1 and 64 shards."
  }
}

variable "telemetry_rate_limit_count" {
  description = "Requests allowed per client IP per interval on /telemetry/* before 429."
  type        = number
  default     = 300
}

variable "telemetry_rate_limit_interval_sec" {
  description = "Interval of telemetry_rate_limit_count, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.telemetry_rate_limit_interval_sec)
    error_message = "Cloud Armor accepts 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600 seconds."
  }
}

variable "telemetry_ban_threshold_count" {
  description = "Requests per client IP per ban interval on /telemetry/* after which the IP is banned."
  type        = number
  default     = 3000
}

variable "telemetry_ban_threshold_interval_sec" {
  description = "Interval of telemetry_ban_threshold_count, in seconds."
  type        = number
  default     = 600

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.telemetry_ban_threshold_interval_sec)
    error_message = "Cloud Armor accepts 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600 seconds."
  }
}

variable "telemetry_ban_duration_sec" {
  description = "How long a banned client IP stays banned on /telemetry/*, in seconds."
  type        = number
  default     = 600
}

# --- The raw product-event archive (90 days) ---------------------------------------------------

resource "google_storage_bucket" "telemetry_archive" {
  name                        = "${var.project_id}-telemetry-archive"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = 0
  }

  # product-events/account=<id>/dt=<day>/<message>.ndjson: raw product telemetry is kept 90 days.
  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The aggregator only creates objects (if absent): it can neither read, overwrite nor delete them.
resource "google_storage_bucket_iam_member" "aggregator_telemetry_archive" {
  bucket = google_storage_bucket.telemetry_archive.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.fn["telemetry-aggregator"].email}"
}

# Exports and erasures of an account read and delete its product events (P11, P26).
resource "google_storage_bucket_iam_member" "worker_telemetry_archive" {
  bucket = google_storage_bucket.telemetry_archive.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.fn["privacy-worker"].email}"
}

# --- Firestore: TTLs of the telemetry collections (shared/datamap.py), no per-field indexes ------

resource "google_firestore_field" "telemetry_counters_ttl" {
  database   = google_firestore_database.default.name
  collection = "telemetry_counters"
  field      = "expire_at"

  ttl_config {}
}

resource "google_firestore_field" "telemetry_salts_ttl" {
  database   = google_firestore_database.default.name
  collection = "telemetry_salts"
  field      = "expire_at"

  ttl_config {}
}

resource "google_firestore_field" "telemetry_messages_ttl" {
  database   = google_firestore_database.default.name
  collection = "telemetry_messages"
  field      = "expire_at"

  ttl_config {}
}

# The counter cells (values and sketch registers) are read by document id only: indexing each of
# their fields would only cost index entries (at most 40,000 per document).
resource "google_firestore_field" "telemetry_counters_cells" {
  database   = google_firestore_database.default.name
  collection = "telemetry_counters"
  field      = "cells"

  index_config {}
}
