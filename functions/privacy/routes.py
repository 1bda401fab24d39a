"""Routes of the privacy function: each translates a request into one privacy-service call."""

from __future__ import annotations

from typing import Any

from functions.privacy import schemas
from shared.bootstrap import privacy_service
from shared.http import Request, Response, Router
from shared.http.pages import ActionPage, render_action_page
from shared.identity.reauth import Proof
from shared.privacy.service import SignedDownload

router = Router()


@router.get("/privacy/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.post("/privacy/requests", body=schemas.CreateRequestBody, status=202, auth=True)
def create_request(req: Request, body: schemas.CreateRequestBody) -> dict[str, Any]:
    proof = Proof(
        current_password=body.current_password, google_id_token=body.google_id_token, totp_code=body.totp_code
    )
    return privacy_service().create_request(req.principal, body.type, proof, req.client_ip, req.user_agent)


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
def download(req: Request, request_id: str) -> Response:
    """A 303 to a short-lived signed URL (production), or the archive streamed as an attachment."""
    found = privacy_service().download(req.principal, request_id)
    if isinstance(found, SignedDownload):
        return Response(status=303, headers={"Location": found.url})
    headers = {"Content-Disposition": f'attachment; filename="{found.filename}"'}
    if found.size is not None:
        headers["Content-Length"] = str(found.size)
    return Response(body=found.chunks, content_type=found.content_type, headers=headers)


@router.get("/privacy/access-log", auth=True)
def access_log(req: Request) -> dict[str, Any]:
    return {"entries": privacy_service().access_log(req.principal)}


# The link in the erasure-scheduled mail: `{APP_URL}/privacy/cancel#request=<id>&token=<token>`. The fragment never
# reaches a server (no access log holds the token); fetching the page changes nothing; its button POSTs JSON.
CANCEL_PAGE = ActionPage(
    title="Cancel the deletion of your account?",
    intro="Your WizyVision account is scheduled to be deleted. Cancel the deletion to keep your account and its data.",
    action="/privacy/cancel",
    button="Cancel the deletion",
    done="Deletion cancelled: your account and its data are kept.",
    fragment_fields=("request",),
)


@router.get("/privacy/cancel")
def cancel_link(_: Request) -> Response:
    """The page the mail's link opens (GET and HEAD change nothing, so a mail scanner cancels nothing)."""
    return render_action_page(CANCEL_PAGE)


@router.post("/privacy/cancel", body=schemas.CancelByLinkBody)
def cancel_by_link(_: Request, body: schemas.CancelByLinkBody) -> dict[str, Any]:
    """The page's button: works without a session (the holder may be signed out); the token proves the mail."""
    request = privacy_service().cancel_with_token(body.request, body.token)
    return {"request_id": request.id, "status": request.status}
