# Cloud Functions (2nd gen), one per directory functions/<dir>/ (P4).
#
# THE FUNCTIONS MAP. One entry per deployed function, keyed by the deployed name: the directory
# name with "_" replaced by "-". The entry point is the directory name (exported by the root
# main.py). tests/infra/test_terraform.py fails until every functions/*/main.py has an entry here
# and every entry has a directory, so add the entry in the same change as the directory.
#
# Keys of an entry (anything omitted takes its value from local.function_defaults):
#   description    what the function does (shown in the console)
#   trigger        "http" or "pubsub"
#   topic          pubsub only: the topic that triggers it; must equal TRIGGER_TOPIC in its main.py
#   public         http only: true = routed by the load balancer at /<name> and /<name>/*, behind
#                  Cloud Armor, invokable by allUsers (the app authenticates); false = internal only
#   schedule       http, non-public only: cron at which Cloud Scheduler POSTs /<name> (scheduler.tf)
#   time_zone      the time zone of `schedule` (tz database name; default Etc/UTC)
#   roles          project roles of the function's own service account (least privilege)
#   secrets        Secret Manager secrets (names from local.secret_env_vars) exposed as env vars
#   publishes      Pub/Sub topics the function publishes to (publisher on those topics only)
#   env            extra plain environment variables for this function
#   memory, cpu, concurrency, timeout, min_instances, max_instances   sizing
#   lb_logging     public only: log requests at the load balancer (client IPs; false for telemetry)
#   dead_letter_after  pubsub only: deliver through a push subscription that retries with backoff and
#                  moves a message to "<topic>-dead-letter" after this many attempts (pubsub.tf),
#                  instead of an Eventarc trigger (whose subscription cannot dead-letter)
#
locals {
  function_specs = {
    api-docs = {
      description = "The merged OpenAPI document (/openapi.json), the API reference (/docs) and the problem type pages (/problems/*)"
      # Generates its pages from the functions' code: it reads no data and calls no Google API, so
      # its service account has no role beyond the base ones (logging).
      roles = []
    }
    auth = {
      description = "Sign-up, email verification, sign-in (password, Google), sessions, TOTP (P1, P2, P16, P21, P22, P25)"
      roles       = ["roles/datastore.user", "roles/firebaseauth.viewer"]
      secrets     = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY"]
      # auth-requests: forgot-password and resend-verification are queued for auth-worker, so the
      # answer does the same work whatever the address (P22).
      # consent-sync: the marketing answer ticked at sign-up is passed on to HubSpot and Intercom (P18).
      publishes = ["mail-outbox", "auth-requests", "consent-sync"]
      # The links in identity mails open the pages this function serves (/auth/verify-email,
      # /auth/reset-password, /auth/confirm-email-change) unless app_url points them at a web app.
      env         = { APP_URL = var.app_url != "" ? var.app_url : "https://${var.domain}" }
      cpu         = "1"
      memory      = "512Mi"
      concurrency = 4
    }
    auth-worker = {
      description = "Mails reset and verification links queued by the auth function, idempotent by message id (P16, P22, P25)"
      trigger     = "pubsub"
      topic       = "auth-requests"
      public      = false
      # Firestore: accounts, pending sign-ups, link tokens, security events, idempotency records.
      roles     = ["roles/datastore.user"]
      secrets   = ["PASSWORD_PEPPER"]
      publishes = ["mail-outbox"]
      env       = { APP_URL = var.app_url != "" ? var.app_url : "https://${var.domain}" }
      # A request still failing after 10 deliveries goes to auth-requests-dead-letter.
      dead_letter_after = 10
    }
    billing = {
      description = "Stripe Checkout and Billing Portal sessions, the account's plan and entitlements (P9, P13, P17)"
      roles       = ["roles/datastore.user"]
      secrets     = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY", "STRIPE_SECRET_KEY"]
      publishes   = ["mail-outbox"]
      env         = local.billing_env
    }
    stripe-webhook = {
      description = "Signed, idempotent, order-proof Stripe webhooks; receipts (P13, P18). No Cloud Armor rate rule, ever."
      roles       = ["roles/datastore.user"]
      secrets     = ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS"]
      publishes   = ["mail-outbox"]
      env         = merge(local.billing_env, { MAX_BODY_BYTES = "1048576" })
      cpu         = "1"
      memory      = "512Mi"
      concurrency = 8
    }
    privacy = {
      description = "Data subject requests of the account holder: export, erasure, objection, cancellation, consent (P10, P11, P18, P19, P20, P26)"
      roles       = ["roles/datastore.user"]
      # UNSUBSCRIBE_SIGNING_KEY: checks the one-click unsubscribe links (/privacy/unsubscribe/<token>, P18).
      # STRIPE_SECRET_KEY: a cancellation sets the account's subscriptions to end at the period's end (P19).
      secrets = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY", "UNSUBSCRIBE_SIGNING_KEY", "STRIPE_SECRET_KEY"]
      # consent-sync: a consent change is passed on to HubSpot and Intercom (P18).
      publishes = ["privacy-jobs", "mail-outbox", "consent-sync"]
      env       = local.privacy_env
    }
    admin = {
      description = "Staff API: DPO erasure, open requests, records of processing, staff roles, cancellation, consent; every call audited (P10, P18, P19, P28)"
      roles       = ["roles/datastore.user"]
      # STRIPE_SECRET_KEY: a cancellation for a customer sets their subscriptions to end at the period's end.
      secrets = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY", "STRIPE_SECRET_KEY"]
      # consent-sync: a consent change recorded by support or the DPO reaches HubSpot and Intercom (P18).
      publishes = ["privacy-jobs", "mail-outbox", "consent-sync"]
      env       = local.privacy_env
    }
    privacy-worker = {
      description = "Resumable erasure and export jobs across every store and processor (P11, P26, P28)"
      trigger     = "pubsub"
      topic       = "privacy-jobs"
      public      = false
      timeout     = 540
      memory      = "512Mi"
      roles       = ["roles/datastore.user", "roles/firebaseauth.admin"]
      # The processor credentials (processors.tf) go to this function only: it alone calls processors.
      secrets   = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY", "STRIPE_SECRET_KEY", "ZENDESK_API_TOKEN", "INTERCOM_TOKEN", "HUBSPOT_TOKEN"]
      publishes = ["privacy-jobs", "mail-outbox"]
      env       = merge(local.privacy_env, local.processor_env)
      # A job still failing after 10 deliveries (about an hour of backoff; a dead worker's lease
      # outlives the first few) goes to privacy-jobs-dead-letter; the scheduled check resumes it too.
      dead_letter_after = 10
    }
    telemetry = {
      description = "Feature-usage events and web analytics over HTTPS into Pub/Sub, staff reports; no IP, no user agent stored (P12, P23)"
      # Firestore: sessions (product telemetry is signed in), the daily salts, the counters (reports).
      roles       = ["roles/datastore.user"]
      secrets     = ["PASSWORD_PEPPER", "TOTP_ENCRYPTION_KEY"]
      publishes   = ["telemetry-events"]
      env         = local.telemetry_env
      cpu         = "1" # concurrency above 1 needs a whole vCPU
      memory      = "512Mi"
      concurrency = 16
      lb_logging  = false
    }
    telemetry-aggregator = {
      description       = "Folds telemetry-events into daily counters and sketches; archives raw product events (P12, P23)"
      trigger           = "pubsub"
      topic             = "telemetry-events"
      public            = false
      roles             = ["roles/datastore.user"]
      env               = local.telemetry_env
      dead_letter_after = 10
    }
    retention-sweep = {
      description = "Erases accounts 12 months after last use and empties every store on its period (P27)"
      public      = false
      # Daily at 03:17 Paris time (the quietest hour), CET or CEST alike.
      schedule  = "17 3 * * *"
      time_zone = "Europe/Paris"
      timeout   = 1800
      memory    = "512Mi"
      # Firestore: range queries and deletes on every place of shared/datamap.py with a purge date, the
      # accounts' purge dates, the category leases (idempotency records). The erasures themselves run in
      # privacy-worker (privacy-jobs); the warning mail goes through the outbox. No secret.
      roles     = ["roles/datastore.user"]
      publishes = ["privacy-jobs", "mail-outbox"]
      # Storage: list and delete in the exports and telemetry-archive buckets only (retention.tf).
      env = {
        EXPORTS_BUCKET           = google_storage_bucket.exports.name
        TELEMETRY_ARCHIVE_BUCKET = google_storage_bucket.telemetry_archive.name
        APP_URL                  = var.app_url != "" ? var.app_url : "https://${var.domain}"
      }
    }
    marketing-digest = {
      description = "The monthly tips digest, to every consenting active account, once per account per month (P18)"
      public      = false
      # 09:00 Paris time on the 1st of each month, CET or CEST alike.
      schedule  = "0 9 1 * *"
      time_zone = "Europe/Paris"
      timeout   = 540
      # Firestore: consents, accounts, the idempotency records of the month's sends. No secret: the
      # mailer checks consent again and signs the unsubscribe link as it sends.
      roles     = ["roles/datastore.user"]
      publishes = ["mail-outbox"]
    }
    consent-sync = {
      description = "Carries marketing consent changes to HubSpot and Intercom, retried until they land (P18)"
      trigger     = "pubsub"
      topic       = "consent-sync"
      public      = false
      # Firestore: consents and accounts.
      roles = ["roles/datastore.user"]
      # Only the credentials of the two processors that send marketing, not Zendesk's or Stripe's.
      secrets = ["INTERCOM_TOKEN", "HUBSPOT_TOKEN"]
      env = {
        INTERCOM_API_BASE       = var.intercom_api_base
        HUBSPOT_SUBSCRIPTION_ID = var.hubspot_subscription_id
        PROCESSORS_DISABLED     = join(",", var.processors_disabled)
      }
      # A change still not accepted after 10 deliveries (backoff 10 s to 10 min) goes to
      # consent-sync-dead-letter; a processor without credentials is skipped, not retried.
      dead_letter_after = 10
    }
    mailer = {
      description = "Sends the mail queued on mail-outbox over SMTP, once per mail id (P16, P25, P29)"
      trigger     = "pubsub"
      topic       = "mail-outbox"
      public      = false
      # Firestore: the idempotency records of the mail ids (shared/idempotency.py).
      # Firestore also: consents and accounts, read before each marketing mail (P18).
      roles = ["roles/datastore.user"]
      # UNSUBSCRIBE_SIGNING_KEY signs the one-click unsubscribe link of each marketing mail (P18).
      secrets = ["SMTP_PASSWORD", "UNSUBSCRIBE_SIGNING_KEY"]
      # A mail still failing after 30 deliveries (exponential backoff from 10 s to 10 min between
      # them, pubsub.tf) goes to mail-outbox-dead-letter, kept 7 days.
      dead_letter_after = 30
    }
  }

  function_defaults = {
    description   = ""
    trigger       = "http"
    topic         = null
    public        = true
    schedule      = null
    time_zone     = "Etc/UTC"
    roles         = []
    secrets       = []
    publishes     = []
    env           = {}
    memory        = "256Mi"
    cpu           = null # derived from memory by the platform
    concurrency   = 1
    timeout       = 60
    min_instances = 0
    max_instances = 20
    lb_logging    = true

    dead_letter_after = null
  }

  # Roles every function's service account gets on top of its own list.
  function_base_roles = ["roles/logging.logWriter"]

  functions = { for name, spec in local.function_specs : name => merge(local.function_defaults, spec) }

  http_functions      = { for name, f in local.functions : name => f if f.trigger == "http" }
  public_functions    = { for name, f in local.http_functions : name => f if f.public }
  scheduled_functions = { for name, f in local.http_functions : name => f if !f.public && f.schedule != null }
  event_functions     = { for name, f in local.functions : name => f if f.trigger == "pubsub" }

  function_roles = {
    for pair in flatten([
      for name, f in local.functions : [
        for role in distinct(concat(local.function_base_roles, f.roles)) : { function = name, role = role }
      ]
    ]) : "${pair.function} ${pair.role}" => pair
  }

  function_secrets = {
    for pair in flatten([
      for name, f in local.functions : [for s in f.secrets : { function = name, secret = s }]
    ]) : "${pair.function} ${pair.secret}" => pair
  }

  function_publishes = {
    for pair in flatten([
      for name, f in local.functions : [for t in f.publishes : { function = name, topic = t }]
    ]) : "${pair.function} ${pair.topic}" => pair
  }

  # Plain configuration read by shared/config.py. Secrets are NOT here: see secrets.tf.
  common_env = {
    APP_ENV                = "production"
    GOOGLE_CLOUD_PROJECT   = var.project_id
    PUBLIC_BASE_URL        = "https://${var.domain}"
    MAIL_FROM              = var.mail_from
    SMTP_HOST              = var.smtp_host
    SMTP_PORT              = tostring(var.smtp_port)
    SMTP_USERNAME          = var.smtp_username
    SMTP_STARTTLS          = "true"
    CORS_ALLOWED_ORIGINS   = join(",", var.cors_allowed_origins)
    BCRYPT_COST            = tostring(var.bcrypt_cost)
    SESSION_IDLE_MINUTES   = tostring(var.session_idle_minutes)
    SESSION_ABSOLUTE_HOURS = tostring(var.session_absolute_hours)
    DPO_EMAIL              = var.dpo_email
    SUPPORT_EMAIL          = var.support_email
    LOG_LEVEL              = var.log_level
    # Point-in-time recovery keeps 7 days of earlier document versions: the deletion mail says so.
    BACKUP_WINDOW_DAYS = var.firestore_point_in_time_recovery ? "7" : "0"
  }
}

# --- Source: one zip of the repository, object named by its hash so a code change redeploys ------

data "archive_file" "source" {
  type        = "zip"
  source_dir  = "${path.module}/.."
  output_path = "${path.module}/.build/source.zip"

  # Everything that is not runtime code stays out (tests, infrastructure, local tooling, caches,
  # local secrets). The root main.py, requirements.txt, shared/ and functions/ remain.
  excludes = [
    ".git",
    ".github",
    ".ci",
    ".venv",
    ".local",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "tests",
    "terraform",
    "bench",
    "devstack",
    "docs",
    "dist",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.log",
    "**/.env",
    "**/.env.*",
    "**/*.tfvars",
    "**/*.tfstate",
    "**/*.tfstate.*",
    ".gitignore",
    # Dev tooling only; requirements.txt is the one runtime manifest the Python buildpack must see.
    "pyproject.toml",
    "README.md",
    "package.json",
    "package-lock.json",
    "requirements-dev.txt",
    "Makefile",
    "cloudbuild.yaml",
  ]
}

resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-function-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Old source archives are not needed once deployed; terraform re-uploads the current one if it
  # ever went missing.
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

resource "google_storage_bucket_object" "source" {
  name         = "source-${data.archive_file.source.output_md5}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.source.output_path
  content_type = "application/zip"
}

# --- Identities: one service account per function (least privilege) ----------------------------

resource "google_service_account" "fn" {
  for_each = local.functions

  # account_id: 6-30 chars.
  account_id   = substr("fn-${each.key}", 0, 30)
  display_name = "Cloud Function ${each.key}"
  description  = "Runtime identity of the ${each.key} function only."

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "fn" {
  for_each = local.function_roles

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

resource "google_secret_manager_secret_iam_member" "fn" {
  for_each = local.function_secrets

  secret_id = google_secret_manager_secret.app[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

resource "google_pubsub_topic_iam_member" "fn_publisher" {
  for_each = local.function_publishes

  topic  = google_pubsub_topic.app[each.value.topic].id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

# Builds run as their own service account, not the legacy default Cloud Build one, with the minimum
# a function build needs: read the staged source, push the image, write build logs.
resource "google_service_account" "build" {
  account_id   = "fn-build"
  display_name = "Cloud Functions builds"
  description  = "Builds the function containers from the source zip."

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/artifactregistry.writer",
    "roles/storage.objectViewer",
  ])

  project = var.project_id
  role    = each.key
  member  = "serviceAccount:${google_service_account.build.email}"
}

# --- The functions -------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions

  name        = each.key
  location    = var.region
  description = each.value.description

  build_config {
    runtime         = var.python_runtime
    entry_point     = replace(each.key, "-", "_")
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.fn[each.key].email
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    timeout_seconds                  = each.value.timeout
    min_instance_count               = each.value.min_instances
    max_instance_count               = each.value.max_instances
    all_traffic_on_latest_revision   = true

    # Public HTTP functions are reachable only through the HTTPS load balancer (P5: no plain HTTP,
    # Cloud Armor in front); everything else only from inside the project (Pub/Sub, Scheduler).
    ingress_settings = each.value.trigger == "http" && each.value.public ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_INTERNAL_ONLY"

    environment_variables = merge(local.common_env, each.value.env)

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.secrets)
      content {
        key        = secret_environment_variables.value
        project_id = var.project_id
        secret     = google_secret_manager_secret.app[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger == "pubsub" && each.value.dead_letter_after == null ? [each.value.topic] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = google_pubsub_topic.app[event_trigger.value].id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.pubsub_invoker.email
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_project_iam_member.build,
    google_project_iam_member.fn,
    google_secret_manager_secret_iam_member.fn,
  ]
}

# Public HTTP functions sit behind the HTTPS load balancer and authenticate callers themselves
# (sessions, signed webhooks). The LB does not attach an identity token, so the underlying Cloud
# Run service must accept unauthenticated invocations; ingress ALLOW_INTERNAL_AND_GCLB keeps the
# direct *.run.app URL closed, so the only way in is https://<domain> through Cloud Armor.
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
