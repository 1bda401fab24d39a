"""Routes of the privacy function: each translates a request into one privacy-service call."""

from __future__ import annotations

from typing import Any

from functions.privacy import schemas
from shared.bootstrap import cancellation_service, privacy_service
from shared.http import Request, Response, Router
from shared.http.pages import ActionPage, render_action_page
from shared.identity.reauth import Proof
from shared.privacy.service import SignedDownload

router = Router()


@router.get("/privacy/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.post(
    "/privacy/requests",
    body=schemas.CreateRequestBody,
    status=202,
    auth=True,
    response=schemas.RequestReceipt,
    problems=(403, 409, 429, 503),
)
def create_request(req: Request, body: schemas.CreateRequestBody) -> dict[str, Any]:
    """Ask for an export or the erasure of the account (P26); an erasure needs a step-up proof (P25).

    An objection (GDPR Art. 21) stops marketing and product analytics for the account: it is answered at once
    (completed, a mail confirms). 409 while an export or erasure of the same type is open.
    """
    proof = Proof(
        current_password=body.current_password, google_id_token=body.google_id_token, totp_code=body.totp_code
    )
    return privacy_service().create_request(
        req.principal, body.type, proof, req.client_ip, req.user_agent, reason=body.reason or ""
    )


@router.get("/privacy/requests", auth=True, response=schemas.PrivacyRequestsAnswer)
def list_requests(req: Request) -> dict[str, Any]:
    """The caller's requests (export, erasure, objection), newest first, and the account's standing objection."""
    return privacy_service().overview(req.principal)


@router.get("/privacy/requests/{request_id}", auth=True, response=schemas.PrivacyRequestView, problems=(404,))
def get_request(req: Request, request_id: str) -> dict[str, Any]:
    """One of the caller's requests (another account's is a 404)."""
    return privacy_service().get_request(req.principal, request_id)


@router.post(
    "/privacy/requests/{request_id}/cancel", auth=True, response=schemas.PrivacyRequestView, problems=(404, 409)
)
def cancel_request(req: Request, request_id: str) -> dict[str, Any]:
    """Cancel an erasure in its grace period (409 once it has started)."""
    return privacy_service().cancel(req.principal, request_id)


@router.get("/privacy/requests/{request_id}/download", auth=True, produces="application/zip", problems=(404, 409, 410))
def download(req: Request, request_id: str) -> Response:
    """The export archive: a 303 to a short-lived signed URL (production), or the zip streamed as an attachment.

    409 while the export is not ready, 410 once it has expired (after 7 days).
    """
    found = privacy_service().download(req.principal, request_id)
    if isinstance(found, SignedDownload):
        return Response(status=303, headers={"Location": found.url})
    headers = {"Content-Disposition": f'attachment; filename="{found.filename}"'}
    if found.size is not None:
        headers["Content-Length"] = str(found.size)
    return Response(body=found.chunks, content_type=found.content_type, headers=headers)


@router.get("/privacy/access-log", auth=True, response=schemas.AccessLogAnswer)
def access_log(req: Request) -> dict[str, Any]:
    """What staff did with the caller's account, from the audit log (P10)."""
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


@router.get("/privacy/cancel", produces="text/html")
def cancel_link(_: Request) -> Response:
    """The page the mail's link opens (GET and HEAD change nothing, so a mail scanner cancels nothing)."""
    return render_action_page(CANCEL_PAGE)


@router.post("/privacy/cancel", body=schemas.CancelByLinkBody, response=schemas.CancelledAnswer, problems=(404, 409))
def cancel_by_link(_: Request, body: schemas.CancelByLinkBody) -> dict[str, Any]:
    """The page's button: works without a session (the holder may be signed out); the token proves the mail."""
    request = privacy_service().cancel_with_token(body.request, body.token)
    return {"request_id": request.id, "status": request.status}


@router.post(
    "/privacy/cancel-account",
    body=schemas.CancelAccountBody,
    auth=True,
    response=schemas.AccountCancelledAnswer,
    problems=(403, 409, 429, 503),
)
def cancel_account(req: Request, body: schemas.CancelAccountBody) -> dict[str, Any]:
    """Cancel the account (P19) with a step-up proof (P25): sessions end, the purge date is mailed.

    Signing in before `purge_at` reactivates the account.
    """
    proof = Proof(
        current_password=body.current_password, google_id_token=body.google_id_token, totp_code=body.totp_code
    )
    answer = cancellation_service().cancel_own(req.principal, proof, req.client_ip, req.user_agent)
    return {"status": answer["status"], "purge_at": answer["purge_at"]}


# --- Marketing consent (P18) ------------------------------------------------------------------------------------------


def _consent() -> Any:
    from shared.bootstrap import consent_service

    return consent_service()


@router.get("/privacy/consent", auth=True, response=schemas.ConsentAnswer)
def get_consent(req: Request) -> dict[str, Any]:
    """The caller's answer to marketing mail (none until they say yes) and every change of it (P18)."""
    service = _consent()
    account_id = req.principal.account.id
    return {**service.current(account_id), "history": service.history(account_id)}


@router.put("/privacy/consent", body=schemas.ConsentBody, auth=True, response=schemas.ConsentAnswer, problems=(503,))
def put_consent(req: Request, body: schemas.ConsentBody) -> dict[str, Any]:
    """Say yes or no to marketing mail; kept in the history and passed on to HubSpot and Intercom (P18)."""
    service = _consent()
    account_id = req.principal.account.id
    service.change(account_id, body.marketing, "settings", actor=account_id)
    return {**service.current(account_id), "history": service.history(account_id)}


# The `List-Unsubscribe` link of every marketing mail: `{PUBLIC_BASE_URL}/privacy/unsubscribe/<signed token>`.
# The token is in the path (never a query string), and the load balancer's request logs of these paths are
# excluded (terraform/monitoring.tf). GET and HEAD show a page and change nothing (mail scanners fetch links);
# the page's button and a mail client's RFC 8058 one-click POST unsubscribe, without a session.
def _unsubscribe_page(token: str) -> ActionPage:
    return ActionPage(
        title="Unsubscribe from WizyVision marketing mail?",
        intro="You will get no more newsletters, offers or tips. Mail about your account, security and billing "
        "still reaches you.",
        action=f"/privacy/unsubscribe/{token}",
        button="Unsubscribe",
        done="Done: you will get no more marketing mail from WizyVision.",
        needs_token=False,
    )


@router.get("/privacy/unsubscribe/{token}", produces="text/html", problems=(400,))
def unsubscribe_page(_: Request, token: str) -> Response:
    """The confirmation page of a marketing mail's unsubscribe link (GET and HEAD change nothing)."""
    _consent().account_of(token)  # a forged or altered link is refused here already
    return render_action_page(_unsubscribe_page(token))


@router.post(
    "/privacy/unsubscribe/{token}",
    raw_body=True,
    max_body_bytes=1024,
    response=schemas.UnsubscribedAnswer,
    problems=(400, 422, 503),
)
def unsubscribe(req: Request, raw: bytes, token: str) -> dict[str, Any]:
    """One-click unsubscribe (RFC 8058): `List-Unsubscribe=One-Click`, form-encoded, as mail clients send it.

    Also the confirmation page's button (a JSON body). Works without a session: the signed token names the one
    account it can unsubscribe; using it again changes nothing more.
    """
    content_type = req.raw.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs

        try:
            form = parse_qs(raw.decode("ascii"), strict_parsing=bool(raw))
        except (UnicodeDecodeError, ValueError):
            form = {}
        if form.get("List-Unsubscribe") != ["One-Click"]:
            from shared.errors import InvalidInput

            raise InvalidInput("validation-error", "The body must be List-Unsubscribe=One-Click (RFC 8058).")
    return _consent().unsubscribe(token)
