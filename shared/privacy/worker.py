"""The privacy worker (P11, P26, P28): runs export and erasure requests as resumable jobs.

A job message names a request. The worker takes a lease on the request document (a transaction), then
runs its steps one at a time; each transition (running, done, retry, failed) is written to the request
document before the next step starts, fenced by the lease. So:

- a worker killed halfway leaves its lease to expire; the redelivered message (or the scheduled check)
  resumes at the first step not finished, and a finished step never runs again;
- a step that fails is retried with exponential backoff (or after the processor's Retry-After) and,
  after `PRIVACY_STEP_MAX_ATTEMPTS`, is marked failed with an alert line; the other steps go on, and
  the request ends `needs_attention` for the DPO (who can retry it);
- short waits (up to `PRIVACY_INLINE_WAIT_SECONDS`) are slept in the worker, longer ones are left to
  the scheduled check (Cloud Scheduler publishes a `tick` on the same topic), which also alerts on
  requests still open 7 days before their due date.

Erasure steps, in order: `sessions` (the account stops working and every session ends: first), one
step per processor (their adapters), one per Firestore place and per Storage place of the data map,
`account` (the email index, then the account document and everything under it), `notify`. The proof
is a deletion record holding ids, timestamps and each step's outcome: no email, name or IP.

Export steps: one per processor (its export, staged in the exports bucket), `archive` (the ZIP,
streamed), `notify`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from pydantic import BaseModel, ConfigDict

from shared import datamap
from shared.adapters import storage as gcs
from shared.adapters.mail import Mailer
from shared.billing.model import BILLING_ACCOUNTS, BillingState
from shared.config import Settings
from shared.events import PubSubMessage
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS, SESSIONS, Account
from shared.identity.stores import AccountStore
from shared.observability import get_logger
from shared.privacy import export as archive
from shared.privacy import mails
from shared.privacy.model import (
    COMPLETED,
    DELETION_RECORDS,
    DONE,
    ERASURE,
    FAILED,
    NEEDS_ATTENTION,
    NOT_FOUND,
    OPEN_STATUSES,
    PRIVACY_REQUESTS,
    QUEUED,
    REQUESTED_BY_DPO,
    RETRY,
    RUNNING,
    SCHEDULED,
    SKIPPED,
    STEP_RUNNING,
    SUCCEEDED,
    TOPIC,
    PrivacyRequest,
    Step,
)
from shared.privacy.places import (
    Outcome,
    delete_account_objects,
    delete_documents,
    erase_firestore_place,
    erase_storage_place,
)
from shared.processors import ProcessorAdapter, ProcessorError, Subject

log = get_logger(__name__)

Clock = Callable[[], datetime]
Publisher = Callable[[str, dict[str, Any]], None]

RUN_BUDGET = timedelta(minutes=7)  # stop and hand over before the function's 9-minute timeout
# How long after an erasure the scheduled check still sweeps the account's storage places for late writes:
# longer than Pub/Sub redelivers a message (7 days), so a product event retried for days finds its archive
# prefix swept again after it lands.
LATE_WRITE_WINDOW = timedelta(days=8)


class PrivacyJob(BaseModel):
    """A message on the privacy-jobs topic: run one request, or the scheduled check."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["run", "tick"] = "run"
    request_id: str | None = None


class Busy(RuntimeError):
    """Another worker holds a live lease on the request: nack, the redelivery comes after it."""


class LeaseLost(RuntimeError):
    """This worker's lease was taken over (it was too slow): stop without writing anything more."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def processor_step(name: str) -> str:
    return f"processor:{name}"


def firestore_step(collection: str) -> str:
    return f"firestore:{collection}"


def storage_step(setting: str) -> str:
    return f"storage:{setting}"


SPECIAL_COLLECTIONS = frozenset({SESSIONS, ACCOUNTS, ACCOUNT_EMAILS})


def erasure_plan(adapters: Sequence[ProcessorAdapter]) -> list[Step]:
    """Every step of an erasure, from the data map and the processor adapters."""
    steps = [Step("sessions")]
    steps += [Step(processor_step(a.name), after=["sessions"]) for a in adapters]
    steps += [
        Step(firestore_step(p.collection), after=["sessions"])
        for p in datamap.FIRESTORE
        if p.collection not in SPECIAL_COLLECTIONS
    ]
    steps += [Step(storage_step(p.bucket_setting), after=["sessions"]) for p in datamap.STORAGE]
    steps.append(Step("account", after=["sessions"]))
    steps.append(Step("notify", after=[s.name for s in steps]))
    return steps


def export_plan(adapters: Sequence[ProcessorAdapter]) -> list[Step]:
    steps = [Step(processor_step(a.name)) for a in adapters]
    steps.append(Step("archive", after=[s.name for s in steps]))
    steps.append(Step("notify", after=["archive"]))
    return steps


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
        self.accounts = accounts  # the account is read and disabled through the identity store
        self.settings = settings
        self.storage = storage
        self._adapters = adapters
        self._adapter_list: Sequence[ProcessorAdapter] | None = None
        self.mailer = mailer
        self.publish = publish
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic

    @property
    def adapters(self) -> Sequence[ProcessorAdapter]:
        if self._adapter_list is None:
            self._adapter_list = list(self._adapters())
        return self._adapter_list

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

    # -- the run loop --------------------------------------------------------------------------
    def run(self, request_id: str) -> str | None:
        """Run the request as far as it can go now. Returns its status when this run ends."""
        owner = secrets.token_hex(8)
        started = self.monotonic()
        while True:
            request = self._claim(request_id, owner)
            if request is None:
                return None
            if not request.open or request.status == NEEDS_ATTENTION:
                return request.status
            now = self.clock()
            if request.run_after is not None and request.run_after > now:
                if not self._wait(request_id, owner, request.run_after - now):
                    return request.status
                continue
            if self.monotonic() - started > RUN_BUDGET.total_seconds():
                self._release(request_id, owner, run_after=now)
                self.publish(TOPIC, {"kind": "run", "request_id": request_id})
                return request.status
            step = self._next_step(request, now)
            if step is not None:
                try:
                    self._run_step(request, step, owner)
                except LeaseLost:
                    # Another worker holds the request now, or it is gone (an erasure deletes the account's
                    # requests): either way this run is over, and a redelivery would find nothing to do.
                    log.info("privacy run ended: lease lost", request_id=request_id, step=step.name)
                    return None
                continue
            if all(s.terminal for s in request.steps.values()):
                return self._finish(request, owner)
            waits = [s.next_attempt_at for s in request.steps.values() if s.status == RETRY and s.next_attempt_at]
            if not waits:  # nothing runnable and nothing to wait for: a dependency failed for good
                return self._finish(request, owner)
            if not self._wait(request_id, owner, min(waits) - now):
                return request.status

    def _wait(self, request_id: str, owner: str, delay: timedelta) -> bool:
        """Sleep a short wait here (True: go on); leave a long one to the scheduled check (False)."""
        seconds = max(0.0, delay.total_seconds())
        if seconds <= self.settings.privacy_inline_wait_seconds:
            self.sleep(seconds)
            return True
        self._release(request_id, owner, run_after=self.clock() + delay)
        log.info("privacy request waits", request_id=request_id, seconds=round(seconds))
        return False

    def _next_step(self, request: PrivacyRequest, now: datetime) -> Step | None:
        for step in request.ordered_steps():
            if step.terminal:
                continue
            if step.status == RETRY and step.next_attempt_at and step.next_attempt_at > now:
                continue
            deps = [request.steps[name] for name in step.after if name in request.steps]
            if not all(d.terminal for d in deps):
                continue
            # A failed dependency blocks a step, except the archive: it is built without what a
            # processor could not give (the archive says so) and the request ends needs_attention.
            if any(d.status == FAILED for d in deps) and step.name != "archive":
                continue
            return step
        return None

    # -- leases and fenced writes --------------------------------------------------------------
    def _claim(self, request_id: str, owner: str) -> PrivacyRequest | None:
        ref = self._ref(request_id)
        now = self.clock()
        lease = timedelta(seconds=self.settings.privacy_lease_seconds)

        @firestore.transactional
        def claim(tx: firestore.Transaction) -> PrivacyRequest | None:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return None
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {})
            if not request.open or request.status == NEEDS_ATTENTION:
                return request
            holder, until = request.lease_owner, request.lease_until
            if holder and holder != owner and until and until > now:
                raise Busy(f"request {request_id} is leased until {until.isoformat()}")
            changes: dict[str, Any] = {"lease_owner": owner, "lease_until": now + lease, "updated_at": now}
            if request.status in (SCHEDULED, QUEUED) and (request.run_after is None or request.run_after <= now):
                changes.update(status=RUNNING, started_at=request.started_at or now, cancel_token_hash=None)
                request.status = RUNNING
            tx.update(ref, changes)
            request.lease_owner = owner
            return request

        request = claim(self.db.transaction())
        if request is None:
            done = self.db.collection(DELETION_RECORDS).document(request_id).get()
            log.info("privacy job for a finished request", request_id=request_id, record=done.exists)
        return request

    def _fenced(self, request_id: str, owner: str, change: Callable[[PrivacyRequest], dict[str, Any]]) -> None:
        """Apply `change` to the request if this worker still holds its lease."""
        ref = self._ref(request_id)

        @firestore.transactional
        def write(tx: firestore.Transaction) -> None:
            snap = ref.get(transaction=tx)
            request = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None
            if request is None or request.lease_owner != owner:
                raise LeaseLost(request_id)
            tx.update(ref, {**change(request), "updated_at": self.clock()})

        write(self.db.transaction())

    def _release(self, request_id: str, owner: str, run_after: datetime | None = None) -> None:
        changes: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        if run_after is not None:
            changes["run_after"] = run_after
        with contextlib.suppress(LeaseLost):
            self._fenced(request_id, owner, lambda _r: changes)

    # -- one step --------------------------------------------------------------------------------
    def _run_step(self, request: PrivacyRequest, step: Step, owner: str) -> None:
        now = self.clock()
        lease = timedelta(seconds=self.settings.privacy_lease_seconds)

        def start(current: PrivacyRequest) -> dict[str, Any]:
            s = current.steps[step.name]
            s.status, s.attempts = STEP_RUNNING, s.attempts + 1
            s.started_at = s.started_at or now
            step.attempts = s.attempts
            return {"steps": {n: x.to_doc() for n, x in current.steps.items()}, "lease_until": now + lease}

        self._fenced(request.id, owner, start)
        try:
            outcome = self._execute(request, step)
        except (LeaseLost, Busy):
            raise
        except Exception as exc:
            log.error("privacy step raised", exc_info=True, request_id=request.id, step=step.name)  # noqa: G201
            outcome = Outcome(RETRY, f"{type(exc).__name__} (see the worker log)")
        self._record(request, step, owner, outcome)

    def _record(self, request: PrivacyRequest, step: Step, owner: str, outcome: Outcome) -> None:
        now = self.clock()
        max_attempts = self.settings.privacy_step_max_attempts
        gave_up = False

        def finish(current: PrivacyRequest) -> dict[str, Any]:
            nonlocal gave_up
            s = current.steps[step.name]
            s.detail = outcome.detail
            if outcome.status in (DONE, NOT_FOUND, SKIPPED):
                s.status, s.finished_at, s.next_attempt_at = outcome.status, now, None
            elif outcome.status == RETRY and s.attempts < max_attempts:
                s.status, s.last_error = RETRY, outcome.detail
                s.next_attempt_at = now + timedelta(seconds=self._delay(s.attempts, outcome.retry_after))
            else:
                s.status, s.finished_at, s.next_attempt_at = FAILED, now, None
                s.last_error = outcome.detail
                gave_up = True
            return {"steps": {n: x.to_doc() for n, x in current.steps.items()}, **outcome.changes}

        self._fenced(request.id, owner, finish)
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

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, float(retry_after))
        base = self.settings.privacy_retry_base_seconds
        return float(min(self.settings.privacy_retry_max_seconds, base * 2 ** max(0, attempts - 1)))

    def _execute(self, request: PrivacyRequest, step: Step) -> Outcome:
        name = step.name
        if name.startswith("processor:"):
            adapter = next((a for a in self.adapters if a.name == name.removeprefix("processor:")), None)
            if adapter is None:
                return Outcome(FAILED, "no adapter for this processor")
            if request.type == ERASURE:
                return self._erase_processor(request, adapter)
            return self._export_processor(request, adapter)
        if request.type == ERASURE:
            if name == "sessions":
                return self._end_sessions(request)
            if name.startswith("firestore:"):
                place = datamap.firestore_place(name.removeprefix("firestore:"))
                keep = frozenset({request.id}) if place.collection == PRIVACY_REQUESTS else frozenset()
                return erase_firestore_place(self.db, place, request.account_id, keep)
            if name.startswith("storage:"):
                setting = name.removeprefix("storage:")
                place = next(p for p in datamap.STORAGE if p.bucket_setting == setting)
                return erase_storage_place(self.storage, self.settings, place, request.account_id)
            if name == "account":
                return self._delete_account(request)
            if name == "notify":
                return self._notify_erasure(request)
        else:
            if name == "archive":
                return self._build_archive(request)
            if name == "notify":
                return self._notify_export(request)
        return Outcome(FAILED, f"unknown step {name}")

    # -- erasure steps ----------------------------------------------------------------------------
    def _account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def _subject_of(self, account: Account) -> dict[str, Any]:
        """The identifiers every step erases by, kept on the request before the account goes. The Stripe
        customer is the one billing linked: `billing_accounts/{account_id}.customer_id` (BillingState)."""
        billing = self.db.collection(BILLING_ACCOUNTS).document(account.id).get()
        customer = BillingState.from_doc(account.id, billing.to_dict() if billing.exists else None).customer_id
        return {
            "account_id": account.id,
            "email": account.email,
            "first_name": account.first_name,
            "firebase_uid": account.firebase_uid,
            "stripe_customer_id": customer if isinstance(customer, str) else None,
        }

    def _end_sessions(self, request: PrivacyRequest) -> Outcome:
        """First step: the account stops working (no sign-in, no session) and every session ends."""
        account = self._account(request.account_id)
        changes: dict[str, Any] = {}
        if account is not None:
            if request.subject is None:
                changes["subject"] = self._subject_of(account)
                request.subject = changes["subject"]
            if account.status != "erasing":
                self.accounts.update(account.id, {"status": "erasing"})
        ended = delete_documents(self.db, SESSIONS, "account_id", request.account_id)
        if account is not None and request.subject and request.requested_by == REQUESTED_BY_DPO:
            subject = request.subject
            self.mailer.send(mails.erasure_started(subject["email"], subject.get("first_name") or "", request.id, True))
        detail = f"account disabled, {ended} sessions ended" if account else f"{ended} sessions ended"
        return Outcome(DONE, detail, changes=changes)

    def _subject(self, request: PrivacyRequest) -> Subject | None:
        data = request.subject
        if not data or not data.get("email"):
            return None
        return Subject(
            account_id=request.account_id,
            email=str(data["email"]),
            firebase_uid=data.get("firebase_uid"),
            stripe_customer_id=data.get("stripe_customer_id"),
        )

    def _erase_processor(self, request: PrivacyRequest, adapter: ProcessorAdapter) -> Outcome:
        subject = self._subject(request)
        if subject is None:
            return Outcome(FAILED, "the account was gone before the request ran: no identifier to erase by")
        result = adapter.erase(subject)
        return Outcome(result.status, result.detail, retry_after=result.retry_after)

    def _delete_account(self, request: PrivacyRequest) -> Outcome:
        """The email index first (so the address can register again), then the account and all under it."""
        indexes = delete_documents(self.db, ACCOUNT_EMAILS, "account_id", request.account_id)
        place = datamap.firestore_place(ACCOUNTS)
        outcome = erase_firestore_place(self.db, place, request.account_id)
        if outcome.status == NOT_FOUND and indexes == 0:
            return Outcome(NOT_FOUND, "account already gone")
        return Outcome(outcome.status, f"{indexes} email index entries; {outcome.detail}", outcome.retry_after)

    def _notify_erasure(self, request: PrivacyRequest) -> Outcome:
        data = request.subject or {}
        if not data.get("email"):
            return Outcome(SKIPPED, "no address to notify")
        first_name = str(data.get("first_name") or "")
        backups = self.settings.backup_window_days
        self.mailer.send(mails.erasure_completed(str(data["email"]), first_name, request.id, backups))
        return Outcome(DONE, "completion mail sent")

    # -- export steps ------------------------------------------------------------------------------
    def _export_subject(self, request: PrivacyRequest) -> tuple[Subject, Account] | None:
        account = self._account(request.account_id)
        if account is None:
            return None
        data = self._subject_of(account)
        subject = Subject(
            account.id, account.email, account.firebase_uid, stripe_customer_id=data.get("stripe_customer_id")
        )
        return subject, account

    def _export_processor(self, request: PrivacyRequest, adapter: ProcessorAdapter) -> Outcome:
        found = self._export_subject(request)
        if found is None:
            return Outcome(FAILED, "account not found")
        try:
            held = adapter.export(found[0])
        except ProcessorError as exc:
            return Outcome(exc.outcome.status, exc.outcome.detail, retry_after=exc.outcome.retry_after)
        blob = gcs.bucket(self.storage, self.settings.exports_bucket).blob(
            f"{archive.staging_prefix(request.account_id, request.id)}{adapter.name}.json"
        )
        blob.upload_from_string(archive.dumps(held), content_type="application/json")
        # An erasure may have run while the processor answered, emptying the exports bucket before this
        # upload: what was just written must not outlive it. (It began by marking the account, so a check
        # after the upload sees it whenever the erasure's own delete could have run before the upload.)
        if self._erasing(request.account_id):
            with contextlib.suppress(gexc.NotFound):
                blob.delete()
            return Outcome(FAILED, "the account is being erased: what the processor held was not kept")
        return Outcome(DONE, "held data collected" if held.get("found", True) else "holds nothing")

    def _erasing(self, account_id: str) -> bool:
        status = self.accounts.status(account_id)
        return status is None or status == "erasing"

    def _build_archive(self, request: PrivacyRequest) -> Outcome:
        handle = gcs.bucket(self.storage, self.settings.exports_bucket)
        staging = archive.staging_prefix(request.account_id, request.id)
        if self._erasing(request.account_id):
            gcs.delete_prefix(handle, staging)
            return Outcome(FAILED, "the account is being erased: no export is built")

        def loader(name: str) -> Callable[[], dict[str, Any]]:
            def load() -> dict[str, Any]:
                step = request.steps.get(processor_step(name))
                blob = handle.blob(f"{staging}{name}.json")
                if step is None or step.status != DONE or not blob.exists():
                    detail = step.last_error if step else "not asked"
                    return {"found": None, "error": f"could not be obtained: {detail}"}
                return dict(json.loads(blob.download_as_bytes()))

            return load

        now = self.clock()
        result = archive.write_archive(
            db=self.db,
            client=self.storage,
            settings=self.settings,
            account_id=request.account_id,
            request_id=request.id,
            processors=[(a.name, loader(a.name)) for a in self.adapters],
            generated_at=now,
        )
        gcs.delete_prefix(handle, staging)
        if self._erasing(request.account_id):  # an erasure started meanwhile: it may have run past the exports
            with contextlib.suppress(gexc.NotFound):
                handle.blob(result["object"]).delete()
            return Outcome(FAILED, "the account is being erased: the export was deleted")
        expires = now + timedelta(days=self.settings.export_retention_days)
        export = {**result, "created_at": now, "expires_at": expires}
        request.export = export
        return Outcome(
            DONE, f"{result['files']} files, {len(result['categories'])} categories", changes={"export": export}
        )

    def _notify_export(self, request: PrivacyRequest) -> Outcome:
        account = self._account(request.account_id)
        if account is None or not request.export:
            return Outcome(SKIPPED, "nothing to announce")
        self.mailer.send(
            mails.export_ready(
                account.email,
                account.first_name,
                self.settings.public_base_url,
                request.id,
                request.export["expires_at"],
            )
        )
        return Outcome(DONE, "ready mail sent")

    # -- the end of a request ---------------------------------------------------------------------
    def _finish(self, request: PrivacyRequest, owner: str) -> str:
        now = self.clock()
        failed = [s.name for s in request.ordered_steps() if s.status not in SUCCEEDED]
        status = NEEDS_ATTENTION if failed else COMPLETED
        if request.type == ERASURE:
            record = self._deletion_record(request, now, complete=not failed)
            self._finish_erasure(request, owner, record, status, now)
        else:
            self._fenced(
                request.id,
                owner,
                lambda _r: {"status": status, "completed_at": now, "lease_owner": None, "lease_until": None},
            )
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

    def _deletion_record(self, request: PrivacyRequest, now: datetime, complete: bool) -> dict[str, Any]:
        """The proof (P11): ids, timestamps, outcomes. No email, name, IP, nor the free-text reason."""
        return {
            "request_id": request.id,
            "account_id": request.account_id,
            "requested_by": request.requested_by,
            "received_at": request.received_at,
            "due_at": request.due_at,
            "started_at": request.started_at,
            "completed_at": now,
            "status": "complete" if complete else "incomplete",
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
                for s in request.ordered_steps()
            ],
        }

    def _finish_erasure(
        self, request: PrivacyRequest, owner: str, record: dict[str, Any], status: str, now: datetime
    ) -> None:
        ref = self._ref(request.id)
        record_ref = self.db.collection(DELETION_RECORDS).document(request.id)

        @firestore.transactional
        def write(tx: firestore.Transaction) -> None:
            snap = ref.get(transaction=tx)
            current = PrivacyRequest.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None
            if current is None or current.lease_owner != owner:
                raise LeaseLost(request.id)
            tx.set(record_ref, record)
            if status == COMPLETED:
                # The request held the subject's identifiers for the processors: it goes with the rest.
                tx.delete(ref)
            else:
                tx.update(ref, {"status": status, "completed_at": now, "lease_owner": None, "lease_until": None})

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
            if self._account(account_id) is not None:  # not erased after all (an incomplete record): leave it
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
