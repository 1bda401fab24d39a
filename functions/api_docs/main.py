"""The `api-docs` Cloud Function: the API's contract and its error types, for people and machines.

`GET /openapi.json` (the OpenAPI 3.1 document of every HTTP function, merged), `GET /docs` (the same as a
plain HTML page) and `GET /problems/` and `/problems/<slug>` (what each problem `type` URI means). It reads
no data: the documents are generated from the functions' routes (shared/http/openapi.py).
"""

from __future__ import annotations

import flask
import functions_framework

from functions.api_docs.routes import router
from shared.bootstrap import settings
from shared.http import HttpApp

app = HttpApp("api-docs", settings=settings, routers=[router])


@functions_framework.http
def api_docs(request: flask.Request) -> flask.Response:
    return app.resolve(request)
