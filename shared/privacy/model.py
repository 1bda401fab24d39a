"""Data subject requests (P11, P26, P28): what a request, a step and a deletion record are.

A request is one Firestore document (`privacy_requests/<id>`) holding its status and a `steps` map:
for each step its status, attempts, last error and timestamps. The worker moves steps forward one
at a time and persists every transition, so a worker killed halfway resumes where it stopped.
"""

from __future__ import annotations

import calendar
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

PRIVACY_REQUESTS = "privacy_requests"
DELETION_RECORDS = "deletion_records"
TOPIC = "privacy-jobs"

EXPORT, ERASURE = "export", "erasure"
REQUEST_TYPES = (EXPORT, ERASURE)

# Request statuses.
SCHEDULED = "scheduled"  # an erasure in its grace period (cancellable)
QUEUED = "queued"  # waiting for the worker
RUNNING = "running"
NEEDS_ATTENTION = "needs_attention"  # a step failed for good; every other step went on
COMPLETED = "completed"
CANCELLED = "cancelled"
OPEN_STATUSES = (SCHEDULED, QUEUED, RUNNING, NEEDS_ATTENTION)

# Step statuses. "done" and "not_found" are successes; "skipped" is a place erased by other means
# (a TTL) or kept on purpose, with the reason in `detail`.
PENDING, STEP_RUNNING, DONE, NOT_FOUND, RETRY, FAILED, SKIPPED = (
    "pending",
    "running",
    "done",
    "not_found",
    "retry",
    "failed",
    "skipped",
)
SUCCEEDED = frozenset({DONE, NOT_FOUND, SKIPPED})
TERMINAL = frozenset({DONE, NOT_FOUND, SKIPPED, FAILED})

REQUESTED_BY_HOLDER = "account_holder"
REQUESTED_BY_DPO = "dpo"

DEADLINE_WARNING = timedelta(days=7)


def due_date(received_at: datetime) -> datetime:
    """One month after receipt (GDPR Art. 12(3)); the 31st of a short month falls on its last day."""
    year = received_at.year + (received_at.month == 12)
    month = received_at.month % 12 + 1
    day = min(received_at.day, calendar.monthrange(year, month)[1])
    return received_at.replace(year=year, month=month, day=day)


@dataclass
class Step:
    name: str
    status: str = PENDING
    attempts: int = 0
    last_error: str = ""
    detail: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    after: list[str] = field(default_factory=list)  # steps that must be terminal first

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_doc(cls, name: str, data: dict[str, Any]) -> Step:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known and k != "name"}, name=name)

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("name")
        return doc

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error or None,
            "detail": self.detail or None,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "next_attempt_at": _iso(self.next_attempt_at) if self.status == RETRY else None,
        }


@dataclass
class PrivacyRequest:
    id: str
    account_id: str
    type: str
    status: str
    received_at: datetime
    due_at: datetime
    requested_by: str = REQUESTED_BY_HOLDER
    actor_id: str | None = None
    reason: str = ""
    run_after: datetime | None = None
    cancellable_until: datetime | None = None
    cancel_token_hash: str | None = None
    step_order: list[str] = field(default_factory=list)
    steps: dict[str, Step] = field(default_factory=dict)
    subject: dict[str, Any] | None = None  # erasure only, while it runs: who the processors know
    export: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    deadline_alerted_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc_id: str, data: dict[str, Any]) -> PrivacyRequest:
        known = set(cls.__dataclass_fields__) - {"id", "steps"}
        steps = {name: Step.from_doc(name, value) for name, value in (data.get("steps") or {}).items()}
        return cls(id=doc_id, steps=steps, **{k: v for k, v in data.items() if k in known})

    def to_doc(self) -> dict[str, Any]:
        doc = {k: v for k, v in asdict(self).items() if k not in ("id", "steps")}
        doc["id"] = self.id
        doc["steps"] = {name: step.to_doc() for name, step in self.steps.items()}
        return doc

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES

    def ordered_steps(self) -> list[Step]:
        return [self.steps[name] for name in self.step_order if name in self.steps]

    def public(self) -> dict[str, Any]:
        """What the account holder (and the DPO) sees: status, dates and every step's outcome."""
        body: dict[str, Any] = {
            "request_id": self.id,
            "type": self.type,
            "status": self.status,
            "requested_by": self.requested_by,
            "received_at": _iso(self.received_at),
            "due_at": _iso(self.due_at),
            "scheduled_for": _iso(self.run_after) if self.status == SCHEDULED else None,
            "cancellable_until": _iso(self.cancellable_until) if self.status == SCHEDULED else None,
            "completed_at": _iso(self.completed_at),
            "cancelled_at": _iso(self.cancelled_at),
            "steps": [step.public() for step in self.ordered_steps()],
        }
        if self.type == EXPORT:
            export = self.export or {}
            body["export"] = {
                "ready": bool(export.get("object")) and self.status in (COMPLETED, NEEDS_ATTENTION),
                "size_bytes": export.get("size"),
                "expires_at": _iso(export.get("expires_at")),
                "download": f"/privacy/requests/{self.id}/download" if export.get("object") else None,
            }
        return body

    def staff_view(self) -> dict[str, Any]:
        return {**self.public(), "account_id": self.account_id, "reason": self.reason or None}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
