"""Routes of the api-docs function: the merged contract, its reference page and the problem type pages."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from functions.api_docs import schemas
from shared.bootstrap import settings
from shared.http import HttpApp, Request, Response, Router
from shared.http.openapi import docs_html, merge_documents, problem_html, problem_index_html
from shared.http.problems import not_found, problem_base
from shared.observability import get_logger

log = get_logger(__name__)

router = Router()

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent
CACHE = "public, max-age=300"
HTML = "text/html; charset=utf-8"

_lock = threading.Lock()
_merged: dict[str, Any] | None = None


def function_dirs() -> list[str]:
    """Every `functions/<dir>/main.py`, as the gateway and the deploy find them."""
    return sorted(
        path.parent.name
        for path in FUNCTIONS_DIR.glob("*/main.py")
        if path.parent.name.isidentifier() and not path.parent.name.startswith("_")
    )


def http_apps() -> list[HttpApp]:
    """The `app` of every HTTP function (event functions have no `HttpApp`, hence no contract)."""
    apps = []
    for name in function_dirs():
        try:
            module = importlib.import_module(f"functions.{name}.main")
        except Exception:  # one broken function must not hide the others' contracts
            log.error("function failed to import for the API document", function=name, exc_info=True)  # noqa: G201
            continue
        app = getattr(module, "app", None)
        if isinstance(app, HttpApp):
            apps.append(app)
    return apps


def merged_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every public HTTP function (built once per instance); internal ones
    (Cloud Scheduler's, never routed by the load balancer) serve only their own document."""
    global _merged
    with _lock:
        if _merged is None:
            public = (app.openapi() for app in http_apps() if app.public)
            _merged = merge_documents(public, title="WizyVision API")
        return _merged


@router.get("/api-docs/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.get("/openapi.json", response=schemas.OpenApiDocument)
def openapi(_: Request) -> Response:
    """The OpenAPI 3.1 document of every HTTP function, merged."""
    return Response(merged_document(), headers={"Cache-Control": CACHE})


@router.get("/docs", produces="text/html")
def docs(_: Request) -> Response:
    """The API reference: every operation grouped by function, its body, answers and problem types."""
    return Response(docs_html(merged_document()), content_type=HTML, headers={"Cache-Control": CACHE})


@router.get("/problems", produces="text/html")
def problems(_: Request) -> Response:
    """Every problem type of the API, with its status and title."""
    page = problem_index_html(problem_base(settings().public_base_url))
    return Response(page, content_type=HTML, headers={"Cache-Control": CACHE})


@router.get("/problems/{slug}", produces="text/html", problems=(404,))
def problem(_: Request, slug: str) -> Response:
    """What a problem type means and what the client should do."""
    page = problem_html(slug, problem_base(settings().public_base_url))
    if page is None:
        raise not_found(f"No problem type {slug!r}: the list is at /problems/.")
    return Response(page, content_type=HTML, headers={"Cache-Control": CACHE})
