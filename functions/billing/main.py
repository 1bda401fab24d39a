"""The `billing` Cloud Function: Checkout and Billing Portal sessions, the account's plan (P9, P13, P17)."""

from __future__ import annotations

import flask
import functions_framework

from functions.billing.routes import router
from shared.bootstrap import identity_service, settings
from shared.http import HttpApp, Request
from shared.identity.model import Principal

app = HttpApp(
    "billing",
    settings=settings,
    routers=[router],
    authenticator=lambda: lambda _request, token: _authenticate(_request, token),
)


def _authenticate(_request: Request, token: str) -> Principal:
    return identity_service().authenticate(token)


@functions_framework.http
def billing(request: flask.Request) -> flask.Response:
    return app.resolve(request)
