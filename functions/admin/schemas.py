"""Request bodies of the admin function, validated by pydantic (unknown fields refused), and its answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from functions.privacy.schemas import PrivacyRequestView, RequestReceipt

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
AccountId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DpoErasureBody(Strict):
    account_id: AccountId
    reason: Reason


class RetryBody(Strict):
    reason: Reason


class RolesBody(Strict):
    roles: Annotated[list[Literal["admin", "dpo", "support"]], Field(max_length=3)]
    reason: Reason


class SecondFactorRemovalBody(Strict):
    """Why support removes the second factor: the ticket and how the holder's identity was checked."""

    reason: Reason


# -- answers (documentation: the OpenAPI `response=` models) ---------------------------------------------------------

StaffRole = Literal["admin", "dpo", "support"]


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class HealthAnswer(Answer):
    status: Literal["ok"]


class ErasureReceipt(RequestReceipt):
    """The DPO's erasure (P28): queued at once, no grace period (an erasure in its grace period is started)."""


class StaffRequestView(PrivacyRequestView):
    """An open request as staff see it: the holder's view plus the account and the DPO's reason."""

    account_id: str
    reason: str | None


class OpenRequestsAnswer(Answer):
    requests: list[StaffRequestView] = Field(description="Every open request, the nearest due date first (P26).")


class DeletionStep(Answer):
    name: str
    status: str
    attempts: int
    detail: str | None
    last_error: str | None
    started_at: str | None = Field(description="A timestamp.")
    finished_at: str | None = Field(description="A timestamp.")


class DeletionRecord(Answer):
    """The proof of an erasure (P11): opaque ids, timestamps and outcomes; no email, name, IP nor reason."""

    request_id: str
    account_id: str
    type: str | None = Field(default=None, description="The request's type (erasure).")
    requested_by: str
    received_at: str = Field(description="A timestamp.")
    due_at: str = Field(description="A timestamp.")
    started_at: str | None = Field(description="A timestamp.")
    completed_at: str = Field(description="A timestamp.")
    status: Literal["complete", "incomplete"]
    steps: list[DeletionStep]


class DeletionRecordsAnswer(Answer):
    records: list[DeletionRecord] = Field(description="The latest records, newest first.")


class RopaCategory(Answer):
    category: str
    description: str
    purposes: list[str]
    places: list[str]
    retention: list[str]
    processors: list[str]


class RopaActivity(Answer):
    store: str
    place: str
    category: str
    purpose: str
    exported: bool
    erasure: str
    retention: str
    note: str


class RopaTransfer(Answer):
    processor: str
    location: str
    safeguards: str


class RecordOfProcessingAnswer(Answer):
    """The record of processing activities (GDPR Art. 30(1)), built from the data map."""

    title: str
    controller: dict[str, Any]
    data_subjects: list[str]
    categories: list[RopaCategory]
    activities: list[RopaActivity]
    processors: list[dict[str, Any]]
    transfers: list[RopaTransfer]
    security_measures: list[str]
    source: str


class RolesAnswer(Answer):
    account_id: str
    roles: list[StaffRole]
    previous_roles: list[str]
    reason: str


class SecondFactorRemovedAnswer(Answer):
    account_id: str
    totp_enabled: Literal[False]
    sessions_ended: int = Field(description="Every session of the account ends.")


class AccountCancelBody(Strict):
    """Why staff cancel the account (the ticket, how the holder asked): kept in the audit log."""

    reason: Reason


class AccountCancelledAnswer(Answer):
    account_id: str
    status: Literal["cancelled"]
    cancelled_at: datetime = Field(description="When it was cancelled (the first time: a repeat changes nothing).")
    purge_at: datetime = Field(description="When the account and its data are erased (P27), mailed to the holder.")


class StaffConsentBody(Strict):
    """A customer's answer to marketing mail, given to support or the DPO, and how it was given."""

    marketing: Annotated[bool, Field(strict=True)]
    reason: Reason


class StaffConsentAnswer(Answer):
    account_id: str
    marketing: bool
    changed_at: datetime | None
    source: str | None
