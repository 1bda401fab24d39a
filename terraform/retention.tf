# The retention sweep (P27): what the retention-sweep function (functions.tf) may do in Cloud Storage.
# It lists and deletes objects past their period in the exports and telemetry-archive buckets; it
# cannot read their content, create or overwrite objects, or touch any other bucket.

resource "google_project_iam_custom_role" "retention_object_deleter" {
  role_id     = "retentionObjectDeleter"
  title       = "Retention sweep: list and delete objects"
  description = "List objects and delete those past their retention period (P27)."
  permissions = [
    "storage.objects.list",
    "storage.objects.delete",
  ]
}

resource "google_storage_bucket_iam_member" "retention_exports" {
  bucket = google_storage_bucket.exports.name
  role   = google_project_iam_custom_role.retention_object_deleter.id
  member = "serviceAccount:${google_service_account.fn["retention-sweep"].email}"
}

resource "google_storage_bucket_iam_member" "retention_telemetry_archive" {
  bucket = google_storage_bucket.telemetry_archive.name
  role   = google_project_iam_custom_role.retention_object_deleter.id
  member = "serviceAccount:${google_service_account.fn["retention-sweep"].email}"
}
