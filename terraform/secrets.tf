# Secret Manager secrets, exposed to functions as environment variables of the same name
# (service_config.secret_environment_variables). Only the secret CONTAINERS are declared here:
# values are added out of band with `gcloud secrets versions add` (docs/deploy.md) and never
# appear in this repository, in tfvars or in Terraform state. Each function's service account can
# read only the secrets listed in its own entry of the functions map (functions.tf).
#
# Secret id = the env var name, lower-case, "_" -> "-" (PASSWORD_PEPPER -> password-pepper).

locals {
  secret_env_vars = [
    "PASSWORD_PEPPER",         # base64url, >= 32 random bytes (P1)
    "TOTP_ENCRYPTION_KEY",     # base64url, >= 32 random bytes (P25)
    "SMTP_PASSWORD",           # password of var.smtp_username on var.smtp_host
    "STRIPE_SECRET_KEY",       # restricted live-mode Stripe API key (P13, P17)
    "STRIPE_WEBHOOK_SECRETS",  # signing secret of /stripe-webhook; "new,old" during a rotation
    "ZENDESK_API_TOKEN",       # API token of var.zendesk_email (processors.tf, privacy-worker only)
    "INTERCOM_TOKEN",          # Intercom access token (privacy-worker, consent-sync)
    "HUBSPOT_TOKEN",           # HubSpot private app token, scopes crm.objects.contacts, communication_preferences (privacy-worker, consent-sync)
    "UNSUBSCRIBE_SIGNING_KEY", # base64url, >= 32 random bytes: HMAC key of the unsubscribe links (mailer signs, privacy checks; P18)
  ]
}

resource "google_secret_manager_secret" "app" {
  for_each = toset(local.secret_env_vars)

  secret_id = lower(replace(each.key, "_", "-"))

  # Stored only in the deployment region (EU data residency).
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.enabled]
}
