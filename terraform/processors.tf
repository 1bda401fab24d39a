# Processors (P14, P24): the configuration of their adapters (shared/processors/). Only the
# privacy-worker calls processors (export and erasure), so only it gets this environment and these
# secrets (local.processor_secrets, declared in secrets.tf); tests/infra checks no other function does.

variable "zendesk_subdomain" {
  description = "Zendesk subdomain (acme for acme.zendesk.com). Empty: erasures report Zendesk as \"not configured\" (failed), never as done."
  type        = string
  default     = ""
}

variable "zendesk_email" {
  description = "Email of the Zendesk agent whose API token is the ZENDESK_API_TOKEN secret."
  type        = string
  default     = ""
}

variable "intercom_api_base" {
  description = "Intercom API of the workspace's region: https://api.eu.intercom.io (EU) or https://api.intercom.io (US)."
  type        = string
  default     = "https://api.eu.intercom.io"

  validation {
    condition     = contains(["https://api.eu.intercom.io", "https://api.intercom.io"], var.intercom_api_base)
    error_message = "intercom_api_base must be an Intercom API host of shared/datamap.py."
  }
}

variable "hubspot_subscription_id" {
  description = "Id of the HubSpot marketing subscription type that marketing consent (P18) subscribes to and unsubscribes from (consent-sync). Empty: consent-sync skips HubSpot as \"not configured\"."
  type        = string
  default     = ""
}

variable "processors_disabled" {
  description = "Processors this environment genuinely does not use (names of shared/datamap.py, e.g. [\"intercom\"]); an erasure records them as \"disabled\"."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.processors_disabled : contains(["google", "stripe", "zendesk", "intercom", "hubspot"], lower(p))])
    error_message = "processors_disabled names processors of shared/datamap.py: google, stripe, zendesk, intercom, hubspot."
  }
}

locals {
  processor_env = {
    ZENDESK_SUBDOMAIN   = var.zendesk_subdomain
    ZENDESK_EMAIL       = var.zendesk_email
    INTERCOM_API_BASE   = var.intercom_api_base
    PROCESSORS_DISABLED = join(",", var.processors_disabled)
  }

  # The processor API credentials; STRIPE_SECRET_KEY (billing's) is the fourth the worker needs.
  processor_secrets = ["ZENDESK_API_TOKEN", "INTERCOM_TOKEN", "HUBSPOT_TOKEN"]
}
