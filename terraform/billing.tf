# Billing through Stripe (P9, P13, P17): the two functions' configuration.
#
# The `billing` function creates Checkout and Billing Portal sessions; `stripe-webhook` receives
# Stripe's signed events (its entry in functions.tf, its route on the load balancer, and NO Cloud
# Armor rate rule: armor.tf). The Stripe secrets are Secret Manager secrets (secrets.tf):
#   STRIPE_SECRET_KEY       a restricted live-mode key with write access to Customers, Checkout
#                           Sessions, Customer portal; read access to Subscriptions, Invoices
#   STRIPE_WEBHOOK_SECRETS  the endpoint's signing secret ; during a rotation the new and
#                           the old one, comma-separated (docs/deploy.md)
# Register the endpoint https://<domain>/stripe-webhook in the Stripe dashboard with the event types
# listed in the README.

variable "app_url" {
  description = "Base URL of the web app (Checkout success/cancel and portal return pages); empty = https://<domain>."
  type        = string
  default     = ""
}

variable "billing_plans_json" {
  description = "The plan catalogue for this Stripe account (live price ids -> plan -> entitlements), as JSON; empty = shared/billing/data/plans.json."
  type        = string
  default     = ""
}

locals {
  billing_env = {
    APP_URL            = var.app_url != "" ? var.app_url : "https://${var.domain}"
    BILLING_PLANS_JSON = var.billing_plans_json
  }
}
