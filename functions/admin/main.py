"""The `admin` Cloud Function: the staff API (P10, P28). Every call is in the audit log, refused ones too."""

from __future__ import annotations

import flask
import functions_framework

from functions.admin.routes import router
from shared.bootstrap import identity_service, privacy_service, settings
from shared.http import HttpApp, Request
from shared.identity.model import Principal

app = HttpApp(
    "admin",
    settings=settings,
    routers=[router],
    authenticator=lambda: lambda _request, token: _authenticate(_request, token),
    audit=lambda: privacy_service().audit_admin_call,
)


def _authenticate(_request: Request, token: str) -> Principal:
    return identity_service().authenticate(token)


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    return app.resolve(request)
