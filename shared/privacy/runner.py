"""The runner of privacy requests (P11, P26): lease, one step at a time, retry with backoff, time budget.

The runner takes a lease on the request document (a transaction), then runs its steps one at a time;
each transition (running, done, retry, failed) is written to the request document before the next step
starts, fenced by the lease. So:

- a worker killed halfway leaves its lease to expire; the redelivered message (or the scheduled check)
  resumes at the first step not finished, and a finished step never runs again;
- a step that fails is retried with exponential backoff (or after the processor's Retry-After) and,
  after `PRIVACY_STEP_MAX_ATTEMPTS`, is marked failed with an alert line; the other steps go on, and
  the request ends `needs_attention` for the DPO (who can retry it);
- short waits (up to `PRIVACY_INLINE_WAIT_SECONDS`) are slept here, longer ones are left to the
  scheduled check; past `RUN_BUDGET` the run hands over to a fresh message.

What a step does is not the runner's business: it calls `execute(request, step)` (the step registry)
and, once nothing is left to run, `finish(request, owner)`. The state transitions themselves are the
pure methods of `PrivacyRequest` (shared/privacy/model.py).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from shared.config import Settings
from shared.observability import get_logger
from shared.privacy.model import DELETION_RECORDS, PRIVACY_REQUESTS, RETRY, TOPIC, PrivacyRequest, Step, backoff_seconds
from shared.privacy.places import Outcome

log = get_logger(__name__)

Clock = Callable[[], datetime]
Publisher = Callable[[str, dict[str, Any]], None]
Execute = Callable[[PrivacyRequest, Step], Outcome]
Finish = Callable[[PrivacyRequest, str], str]

RUN_BUDGET = timedelta(minutes=7)  # stop and hand over before the function's 9-minute timeout


class Busy(RuntimeError):
    """Another worker holds a live lease on the request: nack, the redelivery comes after it."""


class LeaseLost(RuntimeError):
    """This worker's lease was taken over (it was too slow): stop without writing anything more."""


class Runner:
    def __init__(
        self,
        *,
        db: firestore.Client,
        settings: Settings,
        publish: Publisher,
        execute: Execute,
        finish: Finish,
        clock: Clock,
        sleep: Callable[[float], None],
        monotonic: Callable[[], float],
    ) -> None:
        self.db = db
        self.settings = settings
        self.publish = publish
        self.execute = execute
        self.finish = finish
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic

    def ref(self, request_id: str) -> firestore.DocumentReference:
        return self.db.collection(PRIVACY_REQUESTS).document(request_id)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.settings.privacy_lease_seconds)

    # -- the run loop --------------------------------------------------------------------------
    def run(self, request_id: str) -> str | None:
        """Run the request as far as it can go now. Returns its status when this run ends."""
        owner = secrets.token_hex(8)
        started = self.monotonic()
        while True:
            request = self.claim(request_id, owner)
            if request is None:
                return None
            if not request.runnable:
                return request.status
            now = self.clock()
            if not request.due(now):
                assert request.run_after is not None
                if not self.wait(request_id, owner, request.run_after - now):
                    return request.status
                continue
            if self.monotonic() - started > RUN_BUDGET.total_seconds():
                self.release(request_id, owner, run_after=now)
                self.publish(TOPIC, {"kind": "run", "request_id": request_id})
                return request.status
            step = request.next_step(now)
            if step is not None:
                try:
                    self.run_step(request, step, owner)
                except LeaseLost:
                    # Another worker holds the request now, or it is gone (an erasure deletes the account's
                    # requests): either way this run is over, and a redelivery would find nothing to do.
                    log.info("privacy run ended: lease lost", request_id=request_id, step=step.name)
                    return None
                continue
            if request.all_steps_terminal:
                return self.finish(request, owner)
            retry_at = request.next_retry_at()
            if retry_at is None:  # nothing runnable and nothing to wait for: a dependency failed for good
                return self.finish(request, owner)
            if not self.wait(request_id, owner, retry_at - now):
                return request.status

    def wait(self, request_id: str, owner: str, delay: timedelta) -> bool:
        """Sleep a short wait here (True: go on); leave a long one to the scheduled check (False)."""
        seconds = max(0.0, delay.total_seconds())
        if seconds <= self.settings.privacy_inline_wait_seconds:
            self.sleep(seconds)
            return True
        self.release(request_id, owner, run_after=self.clock() + delay)
        log.info("privacy request waits", request_id=request_id, seconds=round(seconds))
        return False

    # -- leases and fenced writes --------------------------------------------------------------
    def claim(self, request_id: str, owner: str) -> PrivacyRequest | None:
        ref = self.ref(request_id)
        now = self.clock()

        @firestore.transactional
        def claim(tx: firestore.Transaction) -> PrivacyRequest | None:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return None
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            if not request.runnable:
                return request
            if request.leased_by_other(owner, now):
                until = request.lease_until.isoformat() if request.lease_until else "?"
                raise Busy(f"request {request_id} is leased until {until}")
            tx.update(ref, request.claim(owner, now, self.lease))
            return request

        request = claim(self.db.transaction())
        if request is None:
            done = self.db.collection(DELETION_RECORDS).document(request_id).get()
            log.info("privacy job for a finished request", request_id=request_id, record=done.exists)
        return request

    def fenced(self, request_id: str, owner: str, change: Callable[[PrivacyRequest], dict[str, Any]]) -> None:
        """Apply `change` to the request if this worker still holds its lease."""
        ref = self.ref(request_id)

        @firestore.transactional
        def write(tx: firestore.Transaction) -> None:
            snap = ref.get(transaction=tx)
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None
            if request is None or request.lease_owner != owner:
                raise LeaseLost(request_id)
            tx.update(ref, {**change(request), "updated_at": self.clock()})

        write(self.db.transaction())

    def release(self, request_id: str, owner: str, run_after: datetime | None = None) -> None:
        with contextlib.suppress(LeaseLost):
            self.fenced(request_id, owner, lambda current: current.release(run_after))

    # -- one step --------------------------------------------------------------------------------
    def run_step(self, request: PrivacyRequest, step: Step, owner: str) -> None:
        now = self.clock()

        def start(current: PrivacyRequest) -> dict[str, Any]:
            changes = current.start_step(step.name, now, now + self.lease)
            step.attempts = current.steps[step.name].attempts
            return changes

        self.fenced(request.id, owner, start)
        try:
            outcome = self.execute(request, step)
        except (LeaseLost, Busy):
            raise
        except Exception as exc:
            log.error("privacy step raised", exc_info=True, request_id=request.id, step=step.name)  # noqa: G201
            outcome = Outcome(RETRY, f"{type(exc).__name__} (see the worker log)")
        self.record(request, step, owner, outcome)

    def record(self, request: PrivacyRequest, step: Step, owner: str, outcome: Outcome) -> None:
        now = self.clock()
        config = self.settings
        gave_up = False

        def finish(current: PrivacyRequest) -> dict[str, Any]:
            nonlocal gave_up
            attempts = current.steps[step.name].attempts
            retry_in = backoff_seconds(
                attempts, outcome.retry_after, config.privacy_retry_base_seconds, config.privacy_retry_max_seconds
            )
            changes, gave_up = current.record_outcome(
                step.name,
                outcome.status,
                outcome.detail,
                now,
                max_attempts=config.privacy_step_max_attempts,
                retry_in=retry_in,
            )
            return {**changes, **outcome.changes}

        self.fenced(request.id, owner, finish)
        if gave_up:
            log.alert(
                "privacy step failed",
                alert_name="privacy-step-failed",
                request_id=request.id,
                request_type=request.type,
                step=step.name,
                attempts=step.attempts,
                detail=outcome.detail,
            )
        else:
            log.info("privacy step", request_id=request.id, step=step.name, status=outcome.status)
