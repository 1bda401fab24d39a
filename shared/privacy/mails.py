"""Mails of data subject requests (P11, P26, P28). Category "privacy": the mailer adds the DPO contact (P29)."""

from __future__ import annotations

from urllib.parse import quote

from shared.adapters.mail import Mail


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if hasattr(value, "strftime") else str(value)


def erasure_scheduled(
    to: str, first_name: str, app_url: str, request_id: str, token: str, runs_at: object, due_at: object
) -> Mail:
    # The token rides in the fragment: browsers never send it, so no server or proxy log holds it; the
    # page's button posts it (shared/http/pages.py).
    link = f"{app_url}/privacy/cancel#request={quote(request_id, safe='')}&token={quote(token, safe='')}"
    return Mail(
        to=to,
        subject="Your account will be deleted",
        category="privacy",
        text=(
            f"Hello {first_name},\n\nWe received your request to delete your WizyVision account and every piece "
            f"of data associated with it (request {request_id}).\n\nThe deletion starts on {_when(runs_at)}. Until "
            f"then you can cancel it with this link:\n\n{link}\n\nAfter that it cannot be undone: your profile, "
            "sessions, security records, business files and what our processors (Google, Stripe, Zendesk, Intercom, "
            f"HubSpot) hold about you are destroyed. We complete it before {_when(due_at)} at the latest."
        ),
    )


def erasure_started(to: str, first_name: str, request_id: str, by_dpo: bool) -> Mail:
    who = "at the request made to our Data Protection Officer" if by_dpo else "as you asked"
    return Mail(
        to=to,
        subject="Your account is being deleted",
        category="privacy",
        text=(
            f"Hello {first_name},\n\nYour WizyVision account and every piece of data associated with it are being "
            f"deleted now, {who} (request {request_id}). Every session has been ended. You will receive one more "
            "message once the deletion is complete."
        ),
    )


def erasure_completed(to: str, first_name: str, request_id: str, backup_window_days: int = 0) -> Mail:
    backups = (
        f" Our database backups, which exist only to recover from a disaster and are never restored for one "
        f"account, still hold earlier copies for up to {backup_window_days} days; then those copies are gone too."
        if backup_window_days > 0
        else ""
    )
    return Mail(
        to=to,
        subject="Your account has been deleted",
        category="privacy",
        text=(
            f"Hello {first_name},\n\nYour WizyVision account and the data associated with it have been deleted "
            f"(request {request_id}), in our systems and at our processors.{backups} We keep only a record that the "
            "deletion was done, which holds no name, email address or IP address. This address can be used to "
            "create a new account at any time."
        ),
    )


def export_ready(to: str, first_name: str, base_url: str, request_id: str, expires_at: object) -> Mail:
    return Mail(
        to=to,
        subject="Your data export is ready",
        category="privacy",
        text=(
            f"Hello {first_name},\n\nThe copy of your data you asked for is ready (request {request_id}): one ZIP "
            "archive with a JSON file per category of data and your business files as they are.\n\nSign in and "
            f"download it at {base_url}/privacy/requests/{quote(request_id)}/download before {_when(expires_at)}; "
            "it is deleted after that."
        ),
    )


def account_cancelled(to: str, first_name: str, purge_at: object, subscription_ends: list[object]) -> Mail:
    """The cancellation of an account (P19): what stops, the purge date, and how to keep the account."""
    day = purge_at.strftime("%Y-%m-%d") if hasattr(purge_at, "strftime") else str(purge_at)
    billing = (
        "Your subscription will not renew: it stays in place until the end of the period already paid ("
        + ", ".join(_when(end) for end in subscription_ends)
        + "), and nothing more is charged.\n\n"
        if subscription_ends
        else ""
    )
    return Mail(
        to=to,
        subject=f"Your account is cancelled: it will be deleted on {day}",
        category="transactional",
        text=(
            f"Hello {first_name},\n\nYour WizyVision account has been cancelled. Every session has been ended, and "
            "we no longer use your data for anything but keeping it: no product analytics, no newsletter, nothing "
            f"is sent to our support or marketing tools.\n\n{billing}Your account and its data are kept until "
            f"{day} ({_when(purge_at)}), then deleted for good, in our systems and at our processors.\n\n"
            f"Changed your mind? Sign in before {day}: you will be asked to confirm, and your account is "
            "reactivated as it was."
        ),
    )


def objection_recorded(to: str, first_name: str, request_id: str) -> Mail:
    return Mail(
        to=to,
        subject="Your objection has been recorded",
        category="privacy",
        text=(
            f"Hello {first_name},\n\nWe received your objection to the processing of your data (request "
            f"{request_id}) and have acted on it: from now on we send you no marketing message and no longer use "
            "your activity in our product analytics. Messages we must send to provide the service (security "
            "notices, billing, answers to your requests) continue."
        ),
    )
