"""The `auth` Cloud Function: sign-up, sign-in (password, Google), sessions, passwords, profile, TOTP."""

from __future__ import annotations

import flask
import functions_framework

from functions.auth.routes import router
from shared.bootstrap import identity_service, settings
from shared.http import HttpApp, Request
from shared.identity.model import Principal

app = HttpApp(
    "auth",
    settings=settings,
    routers=[router],
    authenticator=lambda: lambda _request, token: _authenticate(_request, token),
)


def _authenticate(_request: Request, token: str) -> Principal:
    return identity_service().authenticate(token)


@functions_framework.http
def auth(request: flask.Request) -> flask.Response:
    return app.resolve(request)
