"""The `privacy` Cloud Function: data subject requests of the signed-in account holder (P10, P11, P20, P26)."""

from __future__ import annotations

import flask
import functions_framework

from functions.privacy.routes import router
from shared.bootstrap import identity_service, settings
from shared.http import HttpApp, Request
from shared.identity.model import Principal

app = HttpApp(
    "privacy",
    settings=settings,
    routers=[router],
    authenticator=lambda: lambda _request, token: _authenticate(_request, token),
)


def _authenticate(_request: Request, token: str) -> Principal:
    return identity_service().authenticate(token)


@functions_framework.http
def privacy(request: flask.Request) -> flask.Response:
    return app.resolve(request)
