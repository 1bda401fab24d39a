# Cloud Armor: one security policy per public function, so each function gets its own rules.
# Rate limits are keyed by function (path prefix) in local.armor_rate_limits; a function absent
# from that map gets no rate rule. /stripe-webhook must NEVER get one: Stripe retries failed
# deliveries and a dropped webhook is a lost payment event (P13). Abuse of sign-in is throttled
# per client IP here and per account in the app (P22).

locals {
  armor_rate_limits = {
    auth = {
      count            = var.auth_rate_limit_count
      interval_sec     = var.auth_rate_limit_interval_sec
      ban_count        = var.auth_ban_threshold_count
      ban_interval_sec = var.auth_ban_threshold_interval_sec
      ban_duration_sec = var.auth_ban_duration_sec
      exceed_action    = "deny(429)"
      enforce_on_key   = "IP"
      rule_priority    = 1000
    }
    # Analytics beacons and product events (P12, P23): generous, but one IP cannot flood the topic.
    telemetry = {
      count            = var.telemetry_rate_limit_count
      interval_sec     = var.telemetry_rate_limit_interval_sec
      ban_count        = var.telemetry_ban_threshold_count
      ban_interval_sec = var.telemetry_ban_threshold_interval_sec
      ban_duration_sec = var.telemetry_ban_duration_sec
      exceed_action    = "deny(429)"
      enforce_on_key   = "IP"
      rule_priority    = 1100
    }
  }
}

resource "google_compute_security_policy" "fn" {
  for_each = local.public_functions

  name        = "armor-${each.key}"
  description = "Cloud Armor policy of the ${each.key} function."
  type        = "CLOUD_ARMOR"

  adaptive_protection_config {
    layer_7_ddos_defense_config {
      enable = true
    }
  }

  # Per-client-IP rate limit with ban, only for functions listed in local.armor_rate_limits.
  # Matches /<function> and /<function>/* exactly: never another function's path.
  dynamic "rule" {
    for_each = contains(keys(local.armor_rate_limits), each.key) ? { (each.key) = local.armor_rate_limits[each.key] } : {}
    content {
      action      = "rate_based_ban"
      priority    = rule.value.rule_priority
      description = "Rate limit per client IP on /${rule.key}/*"

      match {
        expr {
          expression = "request.path == '/${rule.key}' || request.path.startsWith('/${rule.key}/')"
        }
      }

      rate_limit_options {
        conform_action   = "allow"
        exceed_action    = rule.value.exceed_action
        enforce_on_key   = rule.value.enforce_on_key
        ban_duration_sec = rule.value.ban_duration_sec

        rate_limit_threshold {
          count        = rule.value.count
          interval_sec = rule.value.interval_sec
        }

        ban_threshold {
          count        = rule.value.ban_count
          interval_sec = rule.value.ban_interval_sec
        }
      }
    }
  }

  rule {
    action      = "allow"
    priority    = 2147483647
    description = "Default: allow"

    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }

  depends_on = [google_project_service.enabled]
}
