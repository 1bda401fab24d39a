"""Routes of the privacy function: each translates a request into one privacy-service call."""

from __future__ import annotations

import html
from typing import Any

import flask

from functions.privacy import schemas
from shared.bootstrap import privacy_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem

router = Router()


@router.get("/privacy/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.post("/privacy/requests", body=schemas.CreateRequestBody, status=202, auth=True)
def create_request(req: Request, body: schemas.CreateRequestBody) -> dict[str, Any]:
    service = privacy_service()
    return service.create_request(req.principal, body.type, body.current_password, req.client_ip, req.user_agent)


@router.get("/privacy/requests", auth=True)
def list_requests(req: Request) -> dict[str, Any]:
    return {"requests": privacy_service().list_requests(req.principal)}


@router.get("/privacy/requests/{request_id}", auth=True)
def get_request(req: Request, request_id: str) -> dict[str, Any]:
    return privacy_service().get_request(req.principal, request_id)


@router.post("/privacy/requests/{request_id}/cancel", auth=True)
def cancel_request(req: Request, request_id: str) -> dict[str, Any]:
    return privacy_service().cancel(req.principal, request_id)


@router.get("/privacy/requests/{request_id}/download", auth=True)
def download(req: Request, request_id: str) -> flask.Response:
    return privacy_service().download(req.principal, request_id)


@router.get("/privacy/access-log", auth=True)
def access_log(req: Request) -> dict[str, Any]:
    return {"entries": privacy_service().access_log(req.principal)}


PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>"""


def _page(title: str, text: str, status: int = 200, form: str = "") -> Response:
    return Response(
        PAGE.format(title=html.escape(title), text=html.escape(text), form=form),
        status=status,
        content_type="text/html; charset=utf-8",
    )


@router.get("/privacy/cancel")
def cancel_link(req: Request) -> Response:
    """The link in the confirmation mail opens a page; only its button (a POST) cancels, so a mail
    scanner following links cannot cancel anyone's erasure."""
    action = html.escape(f"/privacy/cancel?request={req.query.get('request', '')}&token={req.query.get('token', '')}")
    form = f'<form method="post" action="{action}"><button type="submit">Cancel the deletion</button></form>'
    return _page("Cancel the deletion of your account?", "Your account and its data will be kept.", form=form)


@router.post("/privacy/cancel")
def cancel_by_link(req: Request) -> Response:
    try:
        request = privacy_service().cancel_with_token(req.query.get("request", ""), req.query.get("token", ""))
    except Problem as problem:
        return _page("This link cannot be used", problem.detail or problem.title, status=problem.status)
    return _page("Deletion cancelled", f"Request {request.id} is cancelled: your account and its data are kept.")
