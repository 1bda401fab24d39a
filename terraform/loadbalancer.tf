# Global external HTTPS load balancer (P5): https://<domain>/<function>[/...] goes to that
# function, full path forwarded (no rewrite). Plain HTTP on port 80 only answers with a permanent
# redirect to HTTPS. TLS 1.2+ with a Google-managed certificate.

resource "google_compute_global_address" "lb" {
  name = "api-lb-ip"

  depends_on = [google_project_service.enabled]
}

# One serverless NEG and one backend service per public HTTP function.
resource "google_compute_region_network_endpoint_group" "fn" {
  for_each = local.public_functions

  name                  = "neg-${each.key}"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  # A 2nd gen function is served by the Cloud Run service of the same name.
  cloud_run {
    service = google_cloudfunctions2_function.fn[each.key].name
  }
}

resource "google_compute_backend_service" "fn" {
  for_each = local.public_functions

  name                  = "be-${each.key}"
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = google_compute_security_policy.fn[each.key].id

  backend {
    group = google_compute_region_network_endpoint_group.fn[each.key].id
  }

  # Request logs carry client IPs: security information (P22), kept with the log bucket's
  # retention. Telemetry (lb_logging = false) is never logged with an IP (P23).
  log_config {
    enable      = each.value.lb_logging
    sample_rate = each.value.lb_logging ? var.lb_log_sample_rate : null
  }
}

locals {
  # Unknown paths on the domain land on this backend (the app answers 404).
  default_backend = contains(keys(local.public_functions), "auth") ? "auth" : sort(keys(local.public_functions))[0]
}

resource "google_compute_url_map" "https" {
  name            = "api-https"
  default_service = google_compute_backend_service.fn[local.default_backend].id

  host_rule {
    hosts        = [var.domain]
    path_matcher = "functions"
  }

  path_matcher {
    name            = "functions"
    default_service = google_compute_backend_service.fn[local.default_backend].id

    # /<function> and /<function>/* -> that function, path unchanged.
    dynamic "path_rule" {
      for_each = local.public_functions
      content {
        paths   = ["/${path_rule.key}", "/${path_rule.key}/*"]
        service = google_compute_backend_service.fn[path_rule.key].id
      }
    }

    # The API's contract and its problem type pages (problem+json `type` URIs), served by api-docs.
    path_rule {
      paths   = ["/openapi.json", "/docs", "/problems", "/problems/*"]
      service = google_compute_backend_service.fn["api-docs"].id
    }
  }
}

resource "google_compute_managed_ssl_certificate" "api" {
  name = "api-cert-${substr(sha1(var.domain), 0, 8)}"

  managed {
    domains = [var.domain]
  }

  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.enabled]
}

resource "google_compute_ssl_policy" "modern" {
  name            = "api-tls-modern"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"

  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_https_proxy" "api" {
  name             = "api-https-proxy"
  url_map          = google_compute_url_map.https.id
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]
  ssl_policy       = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "api-https"
  target                = google_compute_target_https_proxy.api.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "443"
  ip_protocol           = "TCP"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# --- Port 80: redirect only (P5) -----------------------------------------------------------------

resource "google_compute_url_map" "http_redirect" {
  name = "api-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }

  depends_on = [google_project_service.enabled]
}

resource "google_compute_target_http_proxy" "redirect" {
  name    = "api-http-redirect-proxy"
  url_map = google_compute_url_map.http_redirect.id
}

resource "google_compute_global_forwarding_rule" "http_redirect" {
  name                  = "api-http-redirect"
  target                = google_compute_target_http_proxy.redirect.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "80"
  ip_protocol           = "TCP"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# The one-click unsubscribe links of marketing mail (P18) carry their signed token in the URL path,
# /privacy/unsubscribe/<token> (RFC 8058 needs a URL a mail client can POST to without a session, so it
# cannot live in a fragment). The request logs of those paths, the load balancer's and Cloud Run's, are
# not stored, so no log holds a token that could unsubscribe someone. The privacy function's own
# request log line names the route template, never the path.
resource "google_logging_project_exclusion" "unsubscribe_links" {
  name        = "unsubscribe-link-requests"
  description = "Request logs of /privacy/unsubscribe/<token> (the token is in the path; P18)."
  filter      = "httpRequest.requestUrl:\"/privacy/unsubscribe/\" AND (resource.type=\"http_load_balancer\" OR logName=\"projects/${var.project_id}/logs/run.googleapis.com%2Frequests\")"

  depends_on = [google_project_service.enabled]
}
