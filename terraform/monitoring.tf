# Monitoring and alerting (P6): every policy notifies var.alert_email at once.
#   - 5xx error rate of any function (Cloud Run request metrics of the 2nd gen functions)
#   - application alert lines: severity >= ERROR with a jsonPayload.alert field (shared/observability.py
#     Logger.alert: breach deadlines (P30), privacy-request deadlines (P26), failed erasure steps...)
#   - failed Cloud Scheduler jobs (retention sweep, P27)
#   - Pub/Sub jobs not getting done: oldest undelivered message of an event function (privacy jobs, P11)
#   - uptime check of https://<domain>/auth/health

resource "google_monitoring_notification_channel" "email" {
  display_name = "Backend alerts (${var.alert_email})"
  type         = "email"

  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.enabled]
}

locals {
  notification_channels = [google_monitoring_notification_channel.email.id]

  # Monitoring filter fragment selecting the Cloud Run services of our functions.
  function_services_filter = "resource.label.service_name = one_of(${join(", ", [for name in keys(local.functions) : "\"${name}\""])})"
}

# --- 5xx error rate ------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "function_5xx_rate" {
  display_name = "Functions: 5xx error rate above ${var.error_rate_threshold * 100}%"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "5xx share of requests per function over 5 minutes"

    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.label.response_code_class = \"5xx\" AND ${local.function_services_filter}"
      denominator_filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\" AND ${local.function_services_filter}"
      comparison         = "COMPARISON_GT"
      threshold_value    = var.error_rate_threshold
      duration           = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      denominator_aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.label.service_name"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function answers more than ${var.error_rate_threshold * 100}% of its requests with 5xx. Look at its logs (severity>=ERROR) in Cloud Logging and at the latest revision. P6."
  }

  notification_channels = local.notification_channels
}

# --- Application alert lines --------------------------------------------------------------------

resource "google_logging_metric" "app_alerts" {
  name        = "app_alert_lines"
  description = "Log lines of the backend with severity >= ERROR and a jsonPayload.alert field (P6)."
  filter      = "severity>=ERROR AND jsonPayload.alert:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Application alert lines"

    labels {
      key         = "alert"
      value_type  = "STRING"
      description = "Value of jsonPayload.alert (the alert's name)."
    }
  }

  label_extractors = {
    alert = "EXTRACT(jsonPayload.alert)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "app_alerts" {
  display_name = "Application alert logged"
  combiner     = "OR"
  severity     = "CRITICAL"

  conditions {
    display_name = "An alert line (severity >= ERROR, jsonPayload.alert) was logged"

    condition_threshold {
      filter          = "metric.type = \"logging.googleapis.com/user/${google_logging_metric.app_alerts.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.alert"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The backend logged an alert line (label `alert` names it). Find it in Cloud Logging with `severity>=ERROR AND jsonPayload.alert:*`. Breach (P30) and privacy-request (P26) deadlines are alerted this way. P6."
  }

  notification_channels = local.notification_channels
}

# --- Failed Cloud Scheduler jobs ----------------------------------------------------------------

resource "google_logging_metric" "scheduler_failures" {
  name        = "scheduler_job_failures"
  description = "Cloud Scheduler attempts that failed (P6, P27)."
  filter      = "resource.type=\"cloud_scheduler_job\" AND severity>=ERROR"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Failed Cloud Scheduler attempts"

    labels {
      key         = "job_id"
      value_type  = "STRING"
      description = "Cloud Scheduler job id."
    }
  }

  label_extractors = {
    job_id = "EXTRACT(resource.labels.job_id)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "scheduler_failures" {
  display_name = "Cloud Scheduler job failed"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "A scheduled job attempt failed"

    condition_threshold {
      filter          = "metric.type = \"logging.googleapis.com/user/${google_logging_metric.scheduler_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_id"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A Cloud Scheduler job (label `job_id`) failed: for retention-sweep, the 12-month retention promise (P27) is at risk until it succeeds. Check the job's and the function's logs. P6."
  }

  notification_channels = local.notification_channels
}

# --- Pub/Sub jobs stuck (event functions failing or not keeping up) ----------------------------

resource "google_monitoring_alert_policy" "pubsub_backlog" {
  display_name = "Pub/Sub: a message waits more than ${var.pubsub_backlog_alert_minutes} minutes"
  combiner     = "OR"
  severity     = "ERROR"

  conditions {
    display_name = "Oldest unacknowledged message of a subscription"

    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.pubsub_backlog_alert_minutes * 60
      duration        = "300s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.subscription_id"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An event function (e.g. privacy-worker: erasure and export jobs, P11) has not processed a message for over ${var.pubsub_backlog_alert_minutes} minutes: it keeps failing (see its 5xx and logs) or cannot keep up. P6."
  }

  notification_channels = local.notification_channels

  depends_on = [google_project_service.enabled]
}

# --- Uptime of the public API --------------------------------------------------------------------

resource "google_monitoring_uptime_check_config" "auth_health" {
  display_name = "https://${var.domain}/auth/health"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path           = "/auth/health"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"

    accepted_response_status_codes {
      status_value = 200
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.domain
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "auth_health" {
  display_name = "Uptime: https://${var.domain}/auth/health failing"
  combiner     = "OR"
  severity     = "CRITICAL"

  conditions {
    display_name = "Uptime check failing from more than one location"

    condition_threshold {
      filter          = "resource.type = \"uptime_url\" AND metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\" AND metric.label.check_id = \"${google_monitoring_uptime_check_config.auth_health.uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "60s"

      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "GET https://${var.domain}/auth/health does not answer 200 from several checker locations: the API is down, the certificate is invalid, or the load balancer or Cloud Armor rejects it. P6."
  }

  notification_channels = local.notification_channels
}
