"""The `stripe-webhook` Cloud Function: signed, idempotent, order-proof Stripe events (P13).

A function of its own, so that it scales, fails and is rate-limited (never: Stripe retries) apart
from user traffic.
"""

from __future__ import annotations

import flask
import functions_framework

from functions.stripe_webhook.routes import router
from shared.bootstrap import settings
from shared.http import HttpApp

app = HttpApp("stripe-webhook", settings=settings, routers=[router])


@functions_framework.http
def stripe_webhook(request: flask.Request) -> flask.Response:
    return app.resolve(request)
