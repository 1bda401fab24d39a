"""Routes of the auth function: each translates a request into one identity-service call."""

from __future__ import annotations

import html
from typing import Any

from functions.auth import schemas
from shared.bootstrap import identity_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem
from shared.identity.model import Account, Principal, SessionRecord

router = Router()

ACCEPTED = {
    "status": "accepted",
    "detail": "If the address can receive mail, a message is on its way.",
}


def _session_answer(token: str, record: SessionRecord, account: Account) -> dict[str, Any]:
    return {
        "session_token": token,
        "expires_at": record.expires_at.isoformat(),
        "session_id": record.id,
        "user": account.public(),
    }


@router.get("/auth/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.post("/auth/signup", body=schemas.SignupBody, status=202)
def signup(req: Request, body: schemas.SignupBody) -> dict[str, str]:
    identity_service().signup(
        body.email,
        body.password,
        body.first_name,
        body.last_name,
        req.client_ip,
        req.user_agent,
    )
    return ACCEPTED


@router.post("/auth/verify-email/resend", body=schemas.EmailBody, status=202)
def resend_verification(_: Request, body: schemas.EmailBody) -> dict[str, str]:
    identity_service().resend_verification(body.email)
    return ACCEPTED


@router.post("/auth/verify-email", body=schemas.TokenBody)
def verify_email(_: Request, body: schemas.TokenBody) -> dict[str, Any]:
    account = identity_service().verify_email(body.token)
    return {"status": "verified", "email": account.email}


PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{title}</title>
<body><h1>{title}</h1><p>{text}</p></body></html>"""


@router.get("/auth/verify-email")
def verify_email_link(req: Request) -> Response:
    """The link in the mail, opened in a browser: a small HTML page either way."""
    try:
        account = identity_service().verify_email(req.query.get("token", ""))
    except Problem as problem:
        page = PAGE.format(
            title="This link cannot be used",
            text=html.escape(problem.detail or problem.title),
        )
        return Response(page, status=problem.status, content_type="text/html; charset=utf-8")
    text = f"{html.escape(account.email)} is confirmed. You can now sign in to WizyVision."
    return Response(
        PAGE.format(title="Email address confirmed", text=text),
        content_type="text/html; charset=utf-8",
    )


@router.post("/auth/signin", body=schemas.SigninBody)
def signin(req: Request, body: schemas.SigninBody) -> dict[str, Any]:
    token, record, account = identity_service().signin(
        body.email,
        body.password,
        req.client_ip,
        req.user_agent,
        body.totp_code,
        body.recovery_code,
    )
    return _session_answer(token, record, account)


@router.post("/auth/google", body=schemas.GoogleBody)
def google(req: Request, body: schemas.GoogleBody) -> dict[str, Any]:
    token, record, account = identity_service().google_signin(body.id_token, req.client_ip, req.user_agent)
    return _session_answer(token, record, account)


@router.get("/auth/me", auth=True)
def me(req: Request) -> dict[str, Any]:
    principal: Principal = req.principal
    return principal.account.public()


@router.patch("/auth/me", body=schemas.ProfilePatch, auth=True)
def update_me(req: Request, body: schemas.ProfilePatch) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"current_password"})
    if "billing_contact" in changes and changes["billing_contact"] is not None:
        changes["billing_contact"] = (
            body.billing_contact.model_dump(exclude_none=True) if body.billing_contact else None
        )
    for required in ("first_name", "last_name", "email"):
        if required in changes and changes[required] is None:
            raise Problem(
                422,
                "validation-error",
                "Invalid request body",
                f"{required} cannot be removed.",
            )
    account = identity_service().update_profile(req.principal, changes, body.current_password)
    return account.public()


@router.get("/auth/sessions", auth=True)
def sessions(req: Request) -> dict[str, Any]:
    return {"sessions": identity_service().list_sessions(req.principal)}


@router.delete("/auth/sessions/{session_id}", auth=True, status=204)
def revoke_session(req: Request, session_id: str) -> None:
    identity_service().revoke_session(req.principal, session_id)


@router.post("/auth/signout", auth=True, status=204)
def signout(req: Request) -> None:
    identity_service().signout(req.principal)


@router.get("/auth/security-events", auth=True)
def security_events(req: Request) -> dict[str, Any]:
    return {"events": identity_service().list_security_events(req.principal)}


@router.post("/auth/password/change", body=schemas.ChangePasswordBody, auth=True)
def change_password(req: Request, body: schemas.ChangePasswordBody) -> dict[str, Any]:
    ended = identity_service().change_password(
        req.principal,
        body.current_password,
        body.new_password,
        req.client_ip,
        req.user_agent,
    )
    return {"status": "changed", "sessions_ended": ended}


@router.post("/auth/password/forgot", body=schemas.EmailBody, status=202)
def forgot_password(_: Request, body: schemas.EmailBody) -> dict[str, str]:
    identity_service().forgot_password(body.email)
    return ACCEPTED


@router.post("/auth/password/reset", body=schemas.ResetPasswordBody)
def reset_password(req: Request, body: schemas.ResetPasswordBody) -> dict[str, str]:
    identity_service().reset_password(body.token, body.new_password, req.client_ip, req.user_agent)
    return {"status": "reset"}


@router.post("/auth/mfa/totp/enroll", auth=True)
def totp_enroll(req: Request) -> dict[str, str]:
    return identity_service().totp_enroll(req.principal)


@router.post("/auth/mfa/totp/activate", body=schemas.TotpCodeBody, auth=True)
def totp_activate(req: Request, body: schemas.TotpCodeBody) -> dict[str, Any]:
    codes = identity_service().totp_activate(req.principal, body.code, req.client_ip, req.user_agent)
    return {"status": "enabled", "recovery_codes": codes}


@router.post("/auth/mfa/totp/disable", body=schemas.PasswordBody, auth=True)
def totp_disable(req: Request, body: schemas.PasswordBody) -> dict[str, str]:
    identity_service().totp_disable(req.principal, body.current_password, req.client_ip, req.user_agent)
    return {"status": "disabled"}
