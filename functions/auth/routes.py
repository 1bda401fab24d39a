"""Routes of the auth function: each translates a request into one identity use case.

The pages the mail links open live here too (`GET /auth/verify-email`, `/auth/confirm-email-change`,
`/auth/reset-password`): a GET shows a page, only its button POSTs, and the token stays in the
URL fragment (shared/http/pages.py).
"""

from __future__ import annotations

from typing import Any

from functions.auth import schemas
from shared.bootstrap import identity_service
from shared.errors import InvalidInput
from shared.http import Request, Response, Router
from shared.http.pages import ActionPage, PageField, render_action_page
from shared.identity.model import Account, Principal, SessionRecord
from shared.identity.reauth import Proof

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


def _proof(body: schemas.ProofFields) -> Proof:
    return Proof(body.current_password, body.google_id_token, body.totp_code)


@router.get("/auth/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


# -- sign-up and confirmation (P15, P16) ----------------------------------------------------------------
@router.post("/auth/signup", body=schemas.SignupBody, status=202, response=schemas.AcceptedAnswer, problems=(503,))
def signup(req: Request, body: schemas.SignupBody) -> dict[str, str]:
    """Start a sign-up: a confirmation link goes to the address; the answer is the same for every address."""
    identity_service().registration.signup(
        body.email,
        body.password,
        body.first_name,
        body.last_name,
        req.client_ip,
        req.user_agent,
        marketing_consent=body.marketing_consent,
    )
    return ACCEPTED


@router.post("/auth/verify-email/resend", body=schemas.EmailBody, status=202, response=schemas.AcceptedAnswer)
def resend_verification(_: Request, body: schemas.EmailBody) -> dict[str, str]:
    """Queue a new confirmation link for a pending sign-up (same answer for every address)."""
    identity_service().registration.resend(body.email)
    return ACCEPTED


@router.post(
    "/auth/verify-email",
    body=schemas.ConfirmSignupBody,
    response=schemas.VerifiedAnswer,
    problems=(401, 409, 429),
)
def verify_email(req: Request, body: schemas.ConfirmSignupBody) -> dict[str, Any]:
    """Confirm the address of a sign-up with the password chosen at sign-up: the account is created."""
    account = identity_service().registration.confirm(body.token, body.password, req.client_ip, req.user_agent)
    return {"status": "verified", "email": account.email}


CONFIRM_PAGE = ActionPage(
    title="Confirm your email address",
    intro="Type the password you chose when you signed up, to confirm this address and create your account.",
    action="/auth/verify-email",
    button="Confirm my address",
    done="Your address is confirmed and your account is ready. You can now sign in.",
    fields=(PageField("password", "Password chosen at sign-up", "password", "current-password"),),
    footer="If you did not sign up, close this page: nothing happens without the password.",
)


@router.get("/auth/verify-email", produces="text/html")
def verify_email_page(_: Request) -> Response:
    """The page the confirmation mail links to (the token is in the fragment; only its button POSTs)."""
    return render_action_page(CONFIRM_PAGE)


@router.post("/auth/confirm-email-change", body=schemas.TokenBody, response=schemas.VerifiedAnswer, problems=(409,))
def confirm_email_change(req: Request, body: schemas.TokenBody) -> dict[str, Any]:
    """Make the confirmed new address the login (P15)."""
    account = identity_service().registration.confirm_email_change(body.token, req.client_ip, req.user_agent)
    return {"status": "verified", "email": account.email}


CHANGE_PAGE = ActionPage(
    title="Confirm your new email address",
    intro="Confirm that this address should become the login of your WizyVision account.",
    action="/auth/confirm-email-change",
    button="Use this address",
    done="Done: this address is now your login.",
)


@router.get("/auth/confirm-email-change", produces="text/html")
def confirm_email_change_page(_: Request) -> Response:
    """The page the email-change mail links to (the token is in the fragment; only its button POSTs)."""
    return render_action_page(CHANGE_PAGE)


# -- sign-in (P1, P2, P22) ----------------------------------------------------------------------------
@router.post("/auth/signin", body=schemas.SigninBody, response=schemas.SessionAnswer, problems=(401, 403, 429, 503))
def signin(req: Request, body: schemas.SigninBody) -> dict[str, Any]:
    """Sign in with the address and password (and the second factor when it is on): a new session."""
    token, record, account = identity_service().signin.signin(
        body.email,
        body.password,
        req.client_ip,
        req.user_agent,
        body.totp_code,
        body.recovery_code,
        reactivate=body.reactivate,
    )
    return _session_answer(token, record, account)


@router.post("/auth/google", body=schemas.GoogleBody, response=schemas.SessionAnswer, problems=(401, 403, 409, 503))
def google(req: Request, body: schemas.GoogleBody) -> dict[str, Any]:
    """Sign in with a Google ID token: the account is created or linked on first use; a new session."""
    token, record, account = identity_service().google.signin(
        body.id_token, req.client_ip, req.user_agent, reactivate=body.reactivate
    )
    return _session_answer(token, record, account)


@router.post(
    "/auth/reauthenticate",
    body=schemas.ProofBody,
    auth=True,
    response=schemas.ReauthenticatedAnswer,
    problems=(403, 429),
)
def reauthenticate(req: Request, body: schemas.ProofBody) -> dict[str, Any]:
    """Step-up: prove it is you; the sensitive actions of this session need no proof for the next minutes."""
    method = identity_service().step_up.require(req.principal, _proof(body), req.client_ip, req.user_agent)
    return {"status": "reauthenticated", "method": method}


# -- profile (P15) ------------------------------------------------------------------------------------
@router.get("/auth/me", auth=True, response=schemas.AccountAnswer)
def me(req: Request) -> dict[str, Any]:
    """The caller's own profile."""
    principal: Principal = req.principal
    return principal.account.public()


@router.patch(
    "/auth/me",
    body=schemas.ProfilePatch,
    auth=True,
    response=schemas.AccountAnswer,
    problems=(403, 409, 429, 503),
)
def update_me(req: Request, body: schemas.ProfilePatch) -> dict[str, Any]:
    """Rectify names and billing contact; a new login email needs a step-up and a confirmation link."""
    changes = body.model_dump(exclude_unset=True, exclude=set(schemas.ProofFields.model_fields))
    if "billing_contact" in changes and changes["billing_contact"] is not None:
        changes["billing_contact"] = (
            body.billing_contact.model_dump(exclude_none=True) if body.billing_contact else None
        )
    for required in ("first_name", "last_name", "email"):
        if required in changes and changes[required] is None:
            raise InvalidInput("validation-error", f"{required} cannot be removed.")
    account = identity_service().profile.update(req.principal, changes, _proof(body), req.client_ip, req.user_agent)
    return account.public()


@router.get("/auth/security-events", auth=True, response=schemas.SecurityEventsAnswer)
def security_events(req: Request) -> dict[str, Any]:
    """The account's recent security events (sign-ins, changes of credentials), newest first (P22)."""
    return {"events": identity_service().profile.security_events(req.principal)}


# -- sessions (P21) -----------------------------------------------------------------------------------
@router.get("/auth/sessions", auth=True, response=schemas.SessionsAnswer)
def sessions(req: Request) -> dict[str, Any]:
    """The account's live sessions, the calling one marked `current` (P21)."""
    return {"sessions": identity_service().sessions.list(req.principal)}


@router.delete("/auth/sessions/{session_id}", auth=True, status=204, problems=(403, 404))
def revoke_session(req: Request, session_id: str) -> None:
    """End a session; ending another one than the current needs a recent step-up (POST /auth/reauthenticate)."""
    identity = identity_service()
    record = identity.sessions.find(req.principal, session_id)
    if record.id != req.principal.session.id:
        identity.step_up.require(req.principal, Proof(), req.client_ip, req.user_agent)
    identity.sessions.revoke(req.principal, record)


@router.post("/auth/signout", auth=True, status=204)
def signout(req: Request) -> None:
    """End the calling session."""
    identity_service().sessions.signout(req.principal)


# -- passwords (P25) ----------------------------------------------------------------------------------
@router.post(
    "/auth/password/change",
    body=schemas.ChangePasswordBody,
    auth=True,
    response=schemas.PasswordChangedAnswer,
    problems=(403, 429, 503),
)
def change_password(req: Request, body: schemas.ChangePasswordBody) -> dict[str, Any]:
    """Change the password (with a step-up proof): every other session ends."""
    ended = identity_service().credentials.change_password(
        req.principal, _proof(body), body.new_password, req.client_ip, req.user_agent
    )
    return {"status": "changed", "sessions_ended": ended}


@router.post("/auth/password/forgot", body=schemas.EmailBody, status=202, response=schemas.AcceptedAnswer)
def forgot_password(_: Request, body: schemas.EmailBody) -> dict[str, str]:
    """Queue a reset link (same work and answer for every address)."""
    identity_service().credentials.request_reset(body.email)
    return ACCEPTED


@router.post(
    "/auth/password/reset",
    body=schemas.ResetPasswordBody,
    response=schemas.PasswordResetAnswer,
    problems=(401, 429, 503),
)
def reset_password(req: Request, body: schemas.ResetPasswordBody) -> dict[str, str]:
    """Set a new password with the mailed link; accounts with the second factor also send a code."""
    identity_service().credentials.reset_password(
        body.token, body.new_password, req.client_ip, req.user_agent, body.totp_code, body.recovery_code
    )
    return {"status": "reset"}


RESET_PAGE = ActionPage(
    title="Choose a new password",
    intro="Choose a new password for your WizyVision account. Every session ends when it is set.",
    action="/auth/password/reset",
    button="Set the new password",
    done="Your password is changed. You can now sign in with it.",
    fields=(
        PageField("new_password", "New password", "password", "new-password", "12 to 128 characters.", strength=True),
        PageField(
            "totp_code",
            "Two-step verification code (only if it is on)",
            "text",
            "one-time-code",
            "Or a recovery code in the next field.",
            required=False,
        ),
        PageField("recovery_code", "Recovery code (instead of the code)", "text", "off", required=False),
    ),
)

FORGOT_PAGE = ActionPage(
    title="Reset your password",
    intro="Type the address of your account: we mail it a link to choose a new password.",
    action="/auth/password/forgot",
    button="Mail me a link",
    done="If the address has an account, a message with a link is on its way.",
    fields=(PageField("email", "Email address", "email", "email"),),
    needs_token=False,
)


@router.get("/auth/reset-password", produces="text/html")
def reset_password_page(_: Request) -> Response:
    """The reset link's page; opened without a token (from "someone tried to register"), it asks for a link."""
    return render_action_page(RESET_PAGE, fallback=FORGOT_PAGE)


# -- second factor (P25) ------------------------------------------------------------------------------
@router.post(
    "/auth/mfa/totp/enroll",
    body=schemas.ProofBody,
    auth=True,
    response=schemas.TotpEnrollAnswer,
    problems=(403, 409, 429),
)
def totp_enroll(req: Request, body: schemas.ProofBody) -> dict[str, str]:
    """Start the second factor (with a step-up proof): a new TOTP secret, off until activated."""
    return identity_service().credentials.totp_enroll(req.principal, _proof(body), req.client_ip, req.user_agent)


@router.post(
    "/auth/mfa/totp/activate",
    body=schemas.TotpCodeBody,
    auth=True,
    response=schemas.TotpEnabledAnswer,
    problems=(403, 409, 429, 503),
)
def totp_activate(req: Request, body: schemas.TotpCodeBody) -> dict[str, Any]:
    """Turn the second factor on with a first code from the app: the recovery codes, shown once."""
    codes = identity_service().credentials.totp_activate(
        req.principal, body.code, _proof(body), req.client_ip, req.user_agent
    )
    return {"status": "enabled", "recovery_codes": codes}


@router.post(
    "/auth/mfa/totp/disable",
    body=schemas.ProofBody,
    auth=True,
    response=schemas.TotpDisabledAnswer,
    problems=(403, 429, 503),
)
def totp_disable(req: Request, body: schemas.ProofBody) -> dict[str, str]:
    """Turn the second factor off (with a step-up proof)."""
    identity_service().credentials.totp_disable(req.principal, _proof(body), req.client_ip, req.user_agent)
    return {"status": "disabled"}
