# Inputs. Nothing here is a secret: secret VALUES live only in Secret Manager (secrets.tf,
# docs/deploy.md). Put deployment values in terraform.tfvars (git-ignored) or pass them as
# TF_VAR_* (cloudbuild.yaml); see terraform.tfvars.example.

variable "project_id" {
  description = "Google Cloud project id that hosts the backend (P4)."
  type        = string
}

variable "region" {
  description = "Region of the functions, Pub/Sub triggers, Scheduler jobs, secrets and source bucket. EU by default: data residency (GDPR, P26)."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^europe-", var.region))
    error_message = "The region must be a European region (EU data residency, GDPR)."
  }
}

variable "firestore_point_in_time_recovery" {
  description = "Keep 7 days of earlier document versions for disaster recovery (erased data stays that long in them; the deletion mail says so). The DPO's call."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore location: the EU multi-region eur3 (europe-west1 + europe-west4) or a European region."
  type        = string
  default     = "eur3"

  validation {
    condition     = var.firestore_location == "eur3" || can(regex("^europe-", var.firestore_location))
    error_message = "Firestore must stay in the EU: eur3 or a europe-* region."
  }
}

variable "domain" {
  description = "Public domain of the API (a Google-managed certificate is issued for it), e.g. api.example.com."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.domain))
    error_message = "The domain must be a lower-case DNS name without scheme or path."
  }
}

variable "alert_email" {
  description = "Email address notified by every alert policy (P6)."
  type        = string
}

variable "python_runtime" {
  description = "Cloud Functions (2nd gen) Python runtime."
  type        = string
  default     = "python311"

  validation {
    condition     = contains(["python311", "python312"], var.python_runtime)
    error_message = "The runtime must be python311 or python312."
  }
}

variable "smtp_host" {
  description = "SMTP relay host used for transactional and privacy mail."
  type        = string
}

variable "smtp_port" {
  description = "SMTP relay port (STARTTLS is always required)."
  type        = number
  default     = 587
}

variable "smtp_username" {
  description = "SMTP user name (the password is the Secret Manager secret smtp-password)."
  type        = string
}

variable "mail_from" {
  description = "From header of outgoing mail, e.g. \"WizyVision <no-reply@example.com>\"."
  type        = string
}

variable "dpo_email" {
  description = "Contact of the Data Protection Officer, shown in every privacy mail (P29)."
  type        = string
  default     = "dpo@wizyvision.com"
}

variable "support_email" {
  description = "Support contact shown in mail (P8)."
  type        = string
  default     = "support@wizyvision.com"
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed by CORS, e.g. [\"https://app.example.com\"]. HTTPS only (P5)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.cors_allowed_origins : can(regex("^https://", o))])
    error_message = "Every CORS origin must be an https:// origin (P5)."
  }
}

variable "bcrypt_cost" {
  description = "bcrypt work factor (P1). Never below 12 in production."
  type        = number
  default     = 12

  validation {
    condition     = var.bcrypt_cost >= 12 && var.bcrypt_cost <= 16
    error_message = "bcrypt cost must be between 12 and 16."
  }
}

variable "session_idle_minutes" {
  description = "Idle timeout of a session (P21)."
  type        = number
  default     = 30
}

variable "session_absolute_hours" {
  description = "Absolute lifetime of a session (P21)."
  type        = number
  default     = 12
}

variable "log_level" {
  description = "Application log level."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

# --- Cloud Armor: per-client-IP rate limit on /auth/* (P22) -------------------------------------
# Over auth_rate_limit_count requests per auth_rate_limit_interval_sec from one IP answer 429; an IP
# that keeps exceeding (auth_ban_threshold_count in auth_ban_threshold_interval_sec) is banned for
# auth_ban_duration_sec. Valid intervals: 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800,
# 2700, 3600. There is deliberately no rate rule on /stripe-webhook (Stripe retries must land).

variable "auth_rate_limit_count" {
  description = "Requests allowed per client IP per interval on /auth/* before 429."
  type        = number
  default     = 120
}

variable "auth_rate_limit_interval_sec" {
  description = "Interval of auth_rate_limit_count, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.auth_rate_limit_interval_sec)
    error_message = "Cloud Armor accepts 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600 seconds."
  }
}

variable "auth_ban_threshold_count" {
  description = "Requests per client IP per ban interval on /auth/* after which the IP is banned."
  type        = number
  default     = 600
}

variable "auth_ban_threshold_interval_sec" {
  description = "Interval of auth_ban_threshold_count, in seconds."
  type        = number
  default     = 600

  validation {
    condition     = contains([10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700, 3600], var.auth_ban_threshold_interval_sec)
    error_message = "Cloud Armor accepts 10, 30, 60, 120, 180, 240, 300, 600, 900, 1200, 1800, 2700 or 3600 seconds."
  }
}

variable "auth_ban_duration_sec" {
  description = "How long a banned client IP stays banned on /auth/*, in seconds."
  type        = number
  default     = 600
}

# --- Monitoring (P6) ---------------------------------------------------------------------------

variable "error_rate_threshold" {
  description = "Share of 5xx responses (0..1) of a function over 5 minutes that pages the team."
  type        = number
  default     = 0.05
}

variable "pubsub_backlog_alert_minutes" {
  description = "Age of the oldest undelivered Pub/Sub message (an event function's job) that pages the team."
  type        = number
  default     = 60
}

variable "lb_log_sample_rate" {
  description = "Share of load-balancer requests logged (client IP, path, status: security information, P22). Telemetry is never logged at the LB (P23)."
  type        = number
  default     = 1.0
}

# --- Data subject requests (P11, P26) ------------------------------------------------------------

variable "erasure_grace_hours" {
  description = "Hours during which an account holder can cancel an erasure they asked for (0: none)."
  type        = number
  default     = 24

  validation {
    condition     = var.erasure_grace_hours >= 0 && var.erasure_grace_hours <= 168
    error_message = "The grace period is between 0 and 168 hours."
  }
}

variable "privacy_check_schedule" {
  description = "Cron (UTC) of the privacy-worker's check: deadlines 7 days ahead, wake-ups of waiting requests."
  type        = string
  default     = "*/10 * * * *"
}
