"""The privacy worker (P11, P26, P27, P28): runs export and erasure requests as resumable jobs.

A job message names a request; the scheduled check (Cloud Scheduler publishes a `tick` on the same
topic) alerts on requests still open 7 days before their due date, wakes requests whose wait is over
or whose worker died, and sweeps late writes after recent erasures. The pieces:

- `shared/privacy/runner.py`: the lease, one step at a time with every transition persisted, retry with
  backoff, short waits slept and long ones left to the check, the time budget;
- `shared/privacy/steps.py`: what each step does, one handler per step kind in a registry;
- `shared/privacy/model.py`: the step plans and the pure state transitions of a request.

An erasure (asked by the holder or the DPO, or started by the retention sweep) ends with its proof, a
deletion record holding ids, the request type, timestamps and each step's outcome: no email, name or IP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from pydantic import BaseModel, ConfigDict

from shared import datamap
from shared.adapters.mail import Mailer
from shared.config import Settings
from shared.events import PubSubMessage
from shared.identity.stores import AccountStore
from shared.observability import get_logger
from shared.privacy.model import (
    COMPLETED,
    DELETION_RECORDS,
    NEEDS_ATTENTION,
    OPEN_STATUSES,
    PRIVACY_REQUESTS,
    TOPIC,
    PrivacyRequest,
)
from shared.privacy.places import delete_account_objects
from shared.privacy.runner import RUN_BUDGET, Busy, LeaseLost, Runner
from shared.privacy.steps import StepHandlers
from shared.processors import ProcessorAdapter

__all__ = ["LATE_WRITE_WINDOW", "RUN_BUDGET", "Busy", "LeaseLost", "PrivacyJob", "PrivacyWorker"]

log = get_logger(__name__)

Clock = Callable[[], datetime]
Publisher = Callable[[str, dict[str, Any]], None]

# How long after an erasure the scheduled check still sweeps the account's storage places for late writes:
# longer than Pub/Sub redelivers a message (7 days), so a product event retried for days finds its archive
# prefix swept again after it lands.
LATE_WRITE_WINDOW = timedelta(days=8)


class PrivacyJob(BaseModel):
    """A message on the privacy-jobs topic: run one request, or the scheduled check."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["run", "tick"] = "run"
    request_id: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class PrivacyWorker:
    def __init__(
        self,
        *,
        db: firestore.Client,
        settings: Settings,
        storage: Any,
        adapters: Callable[[], Sequence[ProcessorAdapter]],
        mailer: Mailer,
        publish: Publisher,
        accounts: AccountStore,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.settings = settings
        self.storage = storage
        self.mailer = mailer
        self.publish = publish
        self.clock = clock
        self.steps = StepHandlers(
            db=db, settings=settings, storage=storage, adapters=adapters, mailer=mailer, accounts=accounts, clock=clock
        )
        self.runner = Runner(
            db=db,
            settings=settings,
            publish=publish,
            execute=self.steps.execute,
            finish=self._finish,
            clock=clock,
            sleep=sleep,
            monotonic=monotonic,
        )

    @property
    def adapters(self) -> Sequence[ProcessorAdapter]:
        return self.steps.adapters

    def _ref(self, request_id: str) -> firestore.DocumentReference:
        return self.db.collection(PRIVACY_REQUESTS).document(request_id)

    # -- entry point ---------------------------------------------------------------------------
    def handle(self, message: PubSubMessage, job: PrivacyJob) -> None:
        """The Pub/Sub handler: a raised exception is a nack (redelivered with backoff)."""
        if job.kind == "tick":
            self.tick()
            return
        if not job.request_id:
            log.alert("privacy job without a request id", alert_name="privacy-job-invalid")
            return
        # Busy (another worker's live lease) and any other error propagate: the push is nacked and
        # redelivered with backoff; after `dead_letter_after` deliveries Pub/Sub moves it to the
        # dead-letter topic (terraform), and the scheduled check resumes the request all the same.
        self.run(job.request_id)

    def run(self, request_id: str) -> str | None:
        """Run the request as far as it can go now. Returns its status when this run ends."""
        return self.runner.run(request_id)

    # -- the end of a request ---------------------------------------------------------------------
    def _finish(self, request: PrivacyRequest, owner: str) -> str:
        now = self.clock()
        if request.is_erasure:
            self._finish_erasure(request, owner, now)
        else:
            self.runner.fenced(request.id, owner, lambda current: current.finish(now))
        failed = request.failed_steps()
        status = NEEDS_ATTENTION if failed else COMPLETED
        if failed:
            log.alert(
                "privacy request needs attention",
                alert_name="privacy-request-needs-attention",
                request_id=request.id,
                request_type=request.type,
                failed_steps=failed,
            )
        else:
            log.info("privacy request completed", request_id=request.id, request_type=request.type)
        return status

    def _finish_erasure(self, request: PrivacyRequest, owner: str, now: datetime) -> None:
        """The deletion record (P11) and the end of the request, in one transaction fenced by the lease."""
        ref = self._ref(request.id)
        record_ref = self.db.collection(DELETION_RECORDS).document(request.id)

        @firestore.transactional
        def write(tx: firestore.Transaction) -> None:
            snap = ref.get(transaction=tx)
            current = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None
            if current is None or current.lease_owner != owner:
                raise LeaseLost(request.id)
            tx.set(record_ref, request.deletion_record(now))
            changes = request.finish(now)
            if request.status == COMPLETED:
                # The request held the subject's identifiers for the processors: it goes with the rest.
                tx.delete(ref)
            else:
                tx.update(ref, changes)

        write(self.db.transaction())

    # -- the scheduled check ---------------------------------------------------------------------
    def tick(self) -> dict[str, int]:
        """Alert on requests due within 7 days; wake requests whose wait is over or whose worker died."""
        now = self.clock()
        warn_from = timedelta(days=7)
        counts = {"open": 0, "woken": 0, "alerted": 0}
        open_filter = FieldFilter("status", "in", list(OPEN_STATUSES))
        docs = self.db.collection(PRIVACY_REQUESTS).where(filter=open_filter).stream()
        for snap in docs:
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            counts["open"] += 1
            if request.due_at - now <= warn_from and (
                request.deadline_alerted_at is None or now - request.deadline_alerted_at >= timedelta(days=1)
            ):
                log.alert(
                    "privacy request due soon" if request.due_at > now else "privacy request overdue",
                    alert_name="privacy-request-deadline",
                    request_id=request.id,
                    request_type=request.type,
                    status=request.status,
                    due_at=request.due_at.isoformat(),
                )
                snap.reference.update({"deadline_alerted_at": now})
                counts["alerted"] += 1
            if request.status == NEEDS_ATTENTION:
                continue
            lease_free = request.lease_until is None or request.lease_until <= now
            due = request.run_after is None or request.run_after <= now
            if lease_free and due:
                self.publish(TOPIC, {"kind": "run", "request_id": request.id})
                counts["woken"] += 1
        counts["swept"] = self.sweep_after_erasures(now)
        log.info("privacy check", **counts)
        return counts

    def sweep_after_erasures(self, now: datetime) -> int:
        """Delete what reached an erased account's storage places after its erasure (P11).

        Writers that run apart from the erasure can land after it: a product event delivered late
        (the aggregator may only create objects, never delete them), an export step that was in flight.
        Each check sweeps the places of the accounts erased within `LATE_WRITE_WINDOW`; it returns how
        many objects it deleted.
        """
        swept = 0
        recent = FieldFilter("completed_at", ">=", now - LATE_WRITE_WINDOW)
        records = self.db.collection(DELETION_RECORDS).where(filter=recent).stream()
        erased = {str((snap.to_dict() or {}).get("account_id") or "") for snap in records}
        for account_id in sorted(erased - {""}):
            if self.accounts.get(account_id) is not None:  # not erased after all (an incomplete record): leave it
                continue
            for place in (p for p in datamap.STORAGE if p.erasure == "delete"):
                deleted = delete_account_objects(self.storage, self.settings, place, account_id) or 0
                if deleted:
                    log.warning(
                        "late writes after an erasure deleted",
                        account_id=account_id,
                        bucket_setting=place.bucket_setting,
                        objects=deleted,
                    )
                swept += deleted
        return swept
