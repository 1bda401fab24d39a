"""The `telemetry` Cloud Function: event ingest (product telemetry and web analytics) and staff reports (P12, P23)."""

from __future__ import annotations

import flask
import functions_framework

from functions.telemetry.routes import router
from shared.bootstrap import identity_service, settings
from shared.http import HttpApp, Request
from shared.identity.model import Principal

app = HttpApp(
    "telemetry",
    settings=settings,
    routers=[router],
    authenticator=lambda: lambda _request, token: _authenticate(_request, token),
)


def _authenticate(_request: Request, token: str) -> Principal:
    return identity_service().authenticate(token)


@functions_framework.http
def telemetry(request: flask.Request) -> flask.Response:
    return app.resolve(request)
