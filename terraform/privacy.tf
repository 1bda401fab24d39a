# Data subject requests (P11, P26, P28): the business-data and exports buckets, who may touch them,
# and the scheduled check of the requests' deadlines. The privacy-worker is pushed to by a
# subscription with retries and a dead-letter topic (`dead_letter_after` in functions.tf, pubsub.tf).
#
# - Only the privacy-worker deletes objects (erasure, expired staging); the privacy function only
#   reads the exports bucket (streamed downloads, V4 signed URLs signed with its own identity).
# - Neither bucket keeps deleted objects: no versioning, soft delete disabled. A soft delete is never
#   an erasure (P11); the exports bucket deletes every archive 7 days after it was written.

locals {
  privacy_env = {
    BUSINESS_DATA_BUCKET = google_storage_bucket.business_data.name
    EXPORTS_BUCKET       = google_storage_bucket.exports.name
    # Product telemetry is exported and erased with the account (shared/datamap.py, telemetry.tf).
    TELEMETRY_ARCHIVE_BUCKET = google_storage_bucket.telemetry_archive.name
    ERASURE_GRACE_HOURS      = tostring(var.erasure_grace_hours)
    EXPORT_SIGNED_URLS       = "true"
  }
}

resource "google_storage_bucket" "business_data" {
  name                        = "${var.project_id}-business-data"
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

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket" "exports" {
  name                        = "${var.project_id}-exports"
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

  # Export archives (and the staging files of an export) are deleted 7 days after they were written;
  # the code never serves an archive older than EXPORT_RETENTION_DAYS either.
  lifecycle_rule {
    condition {
      age            = 7
      matches_prefix = ["exports/"]
    }
    action {
      type = "Delete"
    }
  }

  # Anything else that ever lands here goes too.
  lifecycle_rule {
    condition {
      age = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# --- Who may read and delete ------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "worker_business_data" {
  bucket = google_storage_bucket.business_data.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.fn["privacy-worker"].email}"
}

resource "google_storage_bucket_iam_member" "worker_exports" {
  bucket = google_storage_bucket.exports.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.fn["privacy-worker"].email}"
}

resource "google_storage_bucket_iam_member" "privacy_exports_reader" {
  bucket = google_storage_bucket.exports.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.fn["privacy"].email}"
}

# V4 signed download URLs: the privacy function signs with its own identity through the IAM
# signBlob API (no key file exists), which needs the token creator role on itself only.
resource "google_service_account_iam_member" "privacy_signs_urls" {
  service_account_id = google_service_account.fn["privacy"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.fn["privacy"].email}"
}

# --- The scheduled check ----------------------------------------------------------------------

# Every 10 minutes: alert on requests still open 7 days before their due date (P26), wake requests
# whose grace period or retry wait is over, and resume any whose worker died.
resource "google_cloud_scheduler_job" "privacy_check" {
  name        = "privacy-check"
  description = "Deadlines and wake-ups of data subject requests (privacy-worker tick)."
  region      = var.region
  schedule    = var.privacy_check_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 3
  }

  pubsub_target {
    topic_name = google_pubsub_topic.app["privacy-jobs"].id
    data       = base64encode(jsonencode({ kind = "tick" }))
  }

  depends_on = [google_project_service.enabled]
}
