"""Data subject requests (P11, P26, P27, P28): what a request, a step and a deletion record are.

A request is one Firestore document (`privacy_requests/<id>`) holding its status and a `steps` map:
for each step its status, attempts, last error and timestamps. The worker moves steps forward one
at a time and persists every transition, so a worker killed halfway resumes where it stopped.

Everything here is pure: the step plan of a request type (from the data map and the processors), and
every state transition of a request (claim, start a step, record its outcome, finish, cancel, retry),
each returning the changes the caller writes to Firestore, fenced by its lease.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared import datamap
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS, SESSIONS

PRIVACY_REQUESTS = "privacy_requests"
DELETION_RECORDS = "deletion_records"
TOPIC = "privacy-jobs"

EXPORT, ERASURE = "export", "erasure"
RETENTION = "retention"  # an erasure started by the retention sweep (P27): the erasure's steps
OBJECTION = "objection"  # GDPR Art. 21 (P26): recorded and answered at once, no step
REQUEST_TYPES = (EXPORT, ERASURE, RETENTION, OBJECTION)
HOLDER_TYPES = (EXPORT, ERASURE, OBJECTION)  # what the account holder asks for through the API
ERASURE_TYPES = (ERASURE, RETENTION)  # run the erasure plan, leave a deletion record; one open at a time

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
REQUESTED_BY_RETENTION = "retention-sweep"

DEADLINE_WARNING = timedelta(days=7)


def due_date(received_at: datetime) -> datetime:
    """One month after receipt (GDPR Art. 12(3)); the 31st of a short month falls on its last day."""
    year = received_at.year + (received_at.month == 12)
    month = received_at.month % 12 + 1
    day = min(received_at.day, calendar.monthrange(year, month)[1])
    return received_at.replace(year=year, month=month, day=day)


# -- step plans ---------------------------------------------------------------------------------------
# A step's name is `<kind>` or `<kind>:<argument>`; the worker runs a step with the handler of its kind.
SESSIONS_STEP, ACCOUNT_STEP, ARCHIVE_STEP, NOTIFY_STEP = "sessions", "account", "archive", "notify"
PROCESSOR, FIRESTORE, STORAGE = "processor", "firestore", "storage"
# Collections an erasure handles in its own steps (sessions first, the account and its email index last).
SPECIAL_COLLECTIONS = frozenset({SESSIONS, ACCOUNTS, ACCOUNT_EMAILS})
# Steps that run even when a step they wait for failed for good: the archive is built without what a
# processor could not give (the archive says so) and the request ends needs_attention.
RUN_DESPITE_FAILURE = frozenset({ARCHIVE_STEP})


def processor_step(name: str) -> str:
    return f"{PROCESSOR}:{name}"


def firestore_step(collection: str) -> str:
    return f"{FIRESTORE}:{collection}"


def storage_step(setting: str) -> str:
    return f"{STORAGE}:{setting}"


def step_kind(name: str) -> tuple[str, str]:
    """`processor:Stripe` is ("processor", "Stripe"); `notify` is ("notify", "")."""
    kind, _, argument = name.partition(":")
    return kind, argument


def plan_family(request_type: str) -> str:
    """Which plan a request type runs: a retention request is an erasure; an objection runs no step."""
    if request_type in ERASURE_TYPES:
        return ERASURE
    return EXPORT if request_type == EXPORT else OBJECTION


def step_plan(request_type: str, processors: Sequence[str]) -> list[Step]:
    """Every step of a request of this type, from the data map and the processors (names, data-map order).

    Erasure (and retention): `sessions` first, one step per processor, per Firestore place and per
    Storage place, `account`, `notify` last. Export: one step per processor, `archive`, `notify`.
    An objection has no step: it is answered when it is received.
    """
    family = plan_family(request_type)
    if family == ERASURE:
        steps = [Step(SESSIONS_STEP)]
        steps += [Step(processor_step(name), after=[SESSIONS_STEP]) for name in processors]
        steps += [
            Step(firestore_step(p.collection), after=[SESSIONS_STEP])
            for p in datamap.FIRESTORE
            if p.collection not in SPECIAL_COLLECTIONS
        ]
        steps += [Step(storage_step(p.bucket_setting), after=[SESSIONS_STEP]) for p in datamap.STORAGE]
        steps.append(Step(ACCOUNT_STEP, after=[SESSIONS_STEP]))
        steps.append(Step(NOTIFY_STEP, after=[s.name for s in steps]))
        return steps
    if family == EXPORT:
        steps = [Step(processor_step(name)) for name in processors]
        steps.append(Step(ARCHIVE_STEP, after=[s.name for s in steps]))
        steps.append(Step(NOTIFY_STEP, after=[ARCHIVE_STEP]))
        return steps
    return []


def backoff_seconds(attempts: int, retry_after: float | None, base: float, cap: float) -> float:
    """The wait before the next attempt: the processor's Retry-After, else `base` doubling up to `cap`."""
    if retry_after is not None:
        return max(0.0, float(retry_after))
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


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
    objection: dict[str, Any] | None = None  # objection only: what it stopped, and when
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

    @property
    def is_erasure(self) -> bool:
        """An erasure, asked by the holder or the DPO, or started by the retention sweep."""
        return self.type in ERASURE_TYPES

    # -- state transitions (pure: each changes this object and returns the fields to write) ---------------
    def _steps_doc(self) -> dict[str, Any]:
        return {"steps": {n: s.to_doc() for n, s in self.steps.items()}}

    @property
    def runnable(self) -> bool:
        """Whether a worker has anything to do with it (open, and not waiting for the DPO)."""
        return self.open and self.status != NEEDS_ATTENTION

    def leased_by_other(self, owner: str, now: datetime) -> bool:
        return bool(self.lease_owner and self.lease_owner != owner and self.lease_until and self.lease_until > now)

    def due(self, now: datetime) -> bool:
        return self.run_after is None or self.run_after <= now

    def claim(self, owner: str, now: datetime, lease: timedelta) -> dict[str, Any]:
        """Take the lease; a request whose wait is over starts running (its cancel link stops working)."""
        changes: dict[str, Any] = {"lease_owner": owner, "lease_until": now + lease, "updated_at": now}
        if self.status in (SCHEDULED, QUEUED) and self.due(now):
            self.started_at = self.started_at or now
            self.status, self.cancel_token_hash = RUNNING, None
            changes.update(status=RUNNING, started_at=self.started_at, cancel_token_hash=None)
        self.lease_owner, self.lease_until = owner, now + lease
        return changes

    def release(self, run_after: datetime | None = None) -> dict[str, Any]:
        """Give the lease back; `run_after` says when to run again."""
        changes: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        self.lease_owner = self.lease_until = None
        if run_after is not None:
            changes["run_after"] = self.run_after = run_after
        return changes

    def next_step(self, now: datetime) -> Step | None:
        """The first step that can run now: not finished, not waiting for a retry, its dependencies finished
        (and none failed for good, except for a step in RUN_DESPITE_FAILURE)."""
        for step in self.ordered_steps():
            if step.terminal:
                continue
            if step.status == RETRY and step.next_attempt_at and step.next_attempt_at > now:
                continue
            deps = [self.steps[name] for name in step.after if name in self.steps]
            if not all(d.terminal for d in deps):
                continue
            if any(d.status == FAILED for d in deps) and step.name not in RUN_DESPITE_FAILURE:
                continue
            return step
        return None

    @property
    def all_steps_terminal(self) -> bool:
        return all(s.terminal for s in self.steps.values())

    def next_retry_at(self) -> datetime | None:
        waits = [s.next_attempt_at for s in self.steps.values() if s.status == RETRY and s.next_attempt_at]
        return min(waits) if waits else None

    def start_step(self, name: str, now: datetime, lease_until: datetime) -> dict[str, Any]:
        step = self.steps[name]
        step.status, step.attempts = STEP_RUNNING, step.attempts + 1
        step.started_at = step.started_at or now
        self.lease_until = lease_until
        return {**self._steps_doc(), "lease_until": lease_until}

    def record_outcome(
        self, name: str, status: str, detail: str, now: datetime, *, max_attempts: int, retry_in: float
    ) -> tuple[dict[str, Any], bool]:
        """A step's outcome: a success finishes it; `retry` waits `retry_in` seconds unless the attempts are
        spent; anything else (or spent attempts) fails it for good. Returns (changes, gave_up)."""
        step = self.steps[name]
        step.detail = detail
        gave_up = False
        if status in SUCCEEDED:
            step.status, step.finished_at, step.next_attempt_at = status, now, None
        elif status == RETRY and step.attempts < max_attempts:
            step.status, step.last_error = RETRY, detail
            step.next_attempt_at = now + timedelta(seconds=retry_in)
        else:
            step.status, step.finished_at, step.next_attempt_at = FAILED, now, None
            step.last_error = detail
            gave_up = True
        return self._steps_doc(), gave_up

    def failed_steps(self) -> list[str]:
        return [s.name for s in self.ordered_steps() if s.status not in SUCCEEDED]

    def finish(self, now: datetime) -> dict[str, Any]:
        """Every step is over (or blocked): completed, or needs_attention when one did not succeed."""
        self.status = NEEDS_ATTENTION if self.failed_steps() else COMPLETED
        self.completed_at = now
        self.lease_owner = self.lease_until = None
        return {"status": self.status, "completed_at": now, "lease_owner": None, "lease_until": None}

    def cancellable(self, now: datetime) -> bool:
        return self.status == SCHEDULED and not (self.run_after and self.run_after <= now)

    def cancel(self, now: datetime) -> dict[str, Any]:
        self.status, self.cancelled_at, self.cancel_token_hash = CANCELLED, now, None
        return {"status": CANCELLED, "cancelled_at": now, "cancel_token_hash": None, "updated_at": now}

    def start_now_for_dpo(self, actor_id: str, reason: str, now: datetime) -> dict[str, Any]:
        """An erasure in its grace period that the DPO is asked for: it runs at once, uncancellable."""
        self.status, self.requested_by, self.actor_id, self.reason = QUEUED, REQUESTED_BY_DPO, actor_id, reason
        self.run_after = self.cancellable_until = self.cancel_token_hash = None
        return {
            "status": QUEUED,
            "run_after": None,
            "cancellable_until": None,
            "cancel_token_hash": None,
            "requested_by": REQUESTED_BY_DPO,
            "actor_id": actor_id,
            "reason": reason,
            "updated_at": now,
        }

    def retry_failed(self, now: datetime) -> dict[str, Any]:
        """The DPO's retry: the steps that did not succeed run again (every other step stays done)."""
        for step in self.steps.values():
            if step.status not in SUCCEEDED:
                step.status, step.attempts, step.next_attempt_at = PENDING, 0, None
                step.finished_at = None
        self.status, self.run_after, self.completed_at = QUEUED, None, None
        return {"status": QUEUED, "run_after": None, "completed_at": None, **self._steps_doc(), "updated_at": now}

    def deletion_record(self, now: datetime) -> dict[str, Any]:
        """The proof of an erasure (P11): ids, type, timestamps, outcomes. No email, name, IP, nor the reason."""
        return {
            "request_id": self.id,
            "account_id": self.account_id,
            "type": self.type,
            "requested_by": self.requested_by,
            "received_at": self.received_at,
            "due_at": self.due_at,
            "started_at": self.started_at,
            "completed_at": now,
            "status": "incomplete" if self.failed_steps() else "complete",
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "attempts": s.attempts,
                    "detail": s.detail,
                    "last_error": s.last_error,
                    "started_at": s.started_at,
                    "finished_at": s.finished_at,
                }
                for s in self.ordered_steps()
            ],
        }

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
        if self.type == OBJECTION:
            body["objection"] = objection_view(self.objection)
        return body

    def staff_view(self) -> dict[str, Any]:
        return {**self.public(), "account_id": self.account_id, "reason": self.reason or None}


def objection_view(objection: dict[str, Any] | None) -> dict[str, Any] | None:
    """An objection as the holder sees it (on the request, and the account's standing one)."""
    if not objection:
        return None
    return {
        "marketing": bool(objection.get("marketing")),
        "analytics": bool(objection.get("analytics")),
        "at": _iso(objection.get("at")),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
