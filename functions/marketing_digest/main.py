"""The `marketing-digest` Cloud Function: the monthly tips mail to every consenting active account (P18).

Internal only: Cloud Scheduler POSTs /marketing-digest once a month (terraform/functions.tf). Each
account gets the month's digest once, whatever the runs (shared/consent/digest.py); the mailer checks
consent again at send time and adds the one-click unsubscribe link. A run where some mail could not
be queued answers 503, so the scheduler's retry queues the rest (the accounts served are skipped).
"""

from __future__ import annotations

import flask
import functions_framework

from functions.marketing_digest.routes import router
from shared.bootstrap import settings
from shared.http import HttpApp

app = HttpApp("marketing-digest", settings=settings, routers=[router], public=False)


@functions_framework.http
def marketing_digest(request: flask.Request) -> flask.Response:
    return app.resolve(request)
