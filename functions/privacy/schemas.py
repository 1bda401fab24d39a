"""Request bodies of the privacy function, validated by pydantic (unknown fields refused), and its answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateRequestBody(Strict):
    type: Literal["export", "erasure", "objection"]
    # Objection only (GDPR Art. 21): why, in the holder's words (optional).
    reason: Annotated[str, Field(max_length=2000)] | None = None
    # Erasure only: the step-up proof (P25), one of: the current password (password accounts), a Google ID
    # token from a fresh Google sign-in (accounts with Google), a second-factor code (accounts with TOTP on).
    # None is needed within a few minutes of a step-up in the same session.
    current_password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    google_id_token: Annotated[str, Field(min_length=1, max_length=8192)] | None = None
    totp_code: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class CancelByLinkBody(Strict):
    """The cancel page's button: the request id and the token from the mail link's fragment."""

    request: Annotated[str, Field(min_length=1, max_length=128)]
    token: Annotated[str, Field(min_length=1, max_length=512)]


# -- answers (documentation: the OpenAPI `response=` models) ---------------------------------------------------------

RequestType = str  # export, erasure (and any further type of request)


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class HealthAnswer(Answer):
    status: Literal["ok"]


class RequestReceipt(Answer):
    """A request received: its id, status and the date it is answered by (P26)."""

    request_id: str
    type: RequestType
    status: str = Field(description="scheduled (erasure in its grace period), queued, running, completed...")
    due_at: datetime = Field(description="Answered by this date (within one month, P26).")
    scheduled_for: datetime | None = Field(description="An erasure in its grace period runs then.")
    cancellable_until: datetime | None = Field(
        description="An erasure in its grace period can be cancelled until then."
    )


class RequestStep(Answer):
    """One step of a request (a store or a processor), with its outcome."""

    name: str
    status: str
    attempts: int
    last_error: str | None
    detail: str | None
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None


class ExportArchive(Answer):
    """An export's archive: ready to download until `expires_at` (7 days)."""

    ready: bool
    size_bytes: int | None
    expires_at: datetime | None
    download: str | None = Field(description="The path of the download, once the archive exists.")


class ObjectionView(Answer):
    """An objection (P26): what the holder objects to, and since when."""

    marketing: bool
    analytics: bool
    at: datetime | None


class PrivacyRequestView(Answer):
    """An export or erasure request of the caller's account: status, dates and every step's outcome."""

    request_id: str
    type: RequestType
    status: str
    requested_by: str = Field(description="holder (the account holder) or dpo.")
    received_at: datetime
    due_at: datetime
    scheduled_for: datetime | None
    cancellable_until: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    steps: list[RequestStep]
    export: ExportArchive | None = Field(default=None, description="Exports only.")
    objection: ObjectionView | None = Field(default=None, description="Objections only.")


class PrivacyRequestsAnswer(Answer):
    requests: list[PrivacyRequestView] = Field(description="The account's requests, newest first.")
    objection: ObjectionView | None = Field(
        default=None, description="The account's standing objection (P26): marketing and analytics stopped."
    )


class AccessLogEntry(Answer):
    """One thing staff did with the account (P10)."""

    sequence: int
    at: datetime
    action: str
    reason: str
    actor_roles: list[str]


class AccessLogAnswer(Answer):
    entries: list[AccessLogEntry] = Field(description="Newest first.")


class CancelledAnswer(Answer):
    request_id: str
    status: str = Field(description="cancelled.")


class CancelAccountBody(Strict):
    """Cancel the account (P19): the step-up proof (P25), one of these, none within minutes of a step-up."""

    current_password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    google_id_token: Annotated[str, Field(min_length=1, max_length=8192)] | None = None
    totp_code: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class AccountCancelledAnswer(Answer):
    """The account is cancelled: every session has ended; it is deleted at `purge_at` unless the holder signs in."""

    status: Literal["cancelled"]
    purge_at: datetime = Field(description="When the account and its data are erased (P27), mailed to the holder.")


# -- marketing consent (P18) ------------------------------------------------------------------------------------------


class ConsentBody(Strict):
    """The holder's answer to marketing mail (newsletters, offers, usage tips)."""

    marketing: Annotated[bool, Field(strict=True)]


class ConsentChangeView(Answer):
    """One change of the answer: the proof of consent (GDPR Art. 7(1))."""

    marketing: bool
    at: datetime
    source: str = Field(description="signup, settings, unsubscribe-link, support or dpo.")
    by: str = Field(description="holder, staff, link or system.")


class ConsentAnswer(Answer):
    """The current answer (no consent until the holder says yes) and every change of it, oldest first."""

    marketing: bool
    changed_at: datetime | None
    source: str | None
    history: list[ConsentChangeView] = Field(default_factory=list)


class UnsubscribedAnswer(Answer):
    """The one-click unsubscribe was recorded: no more marketing mail."""

    marketing: bool
    changed_at: datetime | None
    source: str | None
