# Cloud Scheduler: non-public HTTP functions with a `schedule` (e.g. retention-sweep, P27) are
# POSTed at /<name> on their internal URL, in the function's `time_zone`, with an empty JSON body
# and an OIDC token of the scheduler service account, which may invoke exactly those functions.
# Failed runs page the team (monitoring.tf, P6). `make run` fires the same jobs locally
# (devstack/scheduler.py reads them from here).

resource "google_service_account" "scheduler" {
  account_id   = "scheduler-invoker"
  display_name = "Cloud Scheduler invoker"
  description  = "Identity Cloud Scheduler uses to call the scheduled functions."

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  for_each = local.scheduled_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_scheduler_job" "fn" {
  for_each = local.scheduled_functions

  name             = each.key
  description      = "Runs ${each.key} on schedule."
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = each.value.time_zone
  attempt_deadline = "${min(each.value.timeout, 1800)}s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "60s"
    max_backoff_duration = "900s"
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}/${each.key}"
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_invoker]
}
