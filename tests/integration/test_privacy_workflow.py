"""Data subject requests on the emulators, with fake processor adapters swapped in through the
composition root (`build_privacy_service`, `build_privacy_worker`), a clock the test moves, and a
`sleep` that moves it instead of waiting (P11, P20, P26, P28).

Every place is checked by reading the Firestore and Storage emulators directly. The worker's
messages are captured instead of published, so the gateway's own worker never races these tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import firestore
from google.oauth2 import service_account

from shared import datamap
from shared.billing.model import BILLING_ACCOUNTS, BillingState
from shared.bootstrap import build_identity_service, build_privacy_service, build_privacy_worker
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS, Account
from shared.identity.reauth import Proof
from shared.identity.stores import FirestoreAccounts
from shared.identity.tokens import email_key
from shared.privacy.model import DELETION_RECORDS, PRIVACY_REQUESTS
from shared.privacy.service import ArchiveDownload, PrivacyService, SignedDownload
from shared.privacy.worker import Busy, PrivacyJob, PrivacyWorker
from shared.processors import StepOutcome
from tests.privacy_support import (
    REFUSED,
    SEED_IP,
    Clock,
    FakeAdapter,
    Killed,
    RecordingMailer,
    Seeded,
    Sleeper,
    db_for,
    fake_adapters,
    refusal,
    remaining,
    seed_account,
    settings,
    storage_for,
)

pytestmark = pytest.mark.policy("P11")

FAST = {
    "PRIVACY_RETRY_BASE_SECONDS": "1",
    "PRIVACY_RETRY_MAX_SECONDS": "4",
    "PRIVACY_STEP_MAX_ATTEMPTS": "3",
    "PRIVACY_INLINE_WAIT_SECONDS": "30",
}


class Harness:
    """A privacy service and worker sharing fakes, a clock and a captured publisher."""

    def __init__(self, stack: Any, adapters: list[FakeAdapter], url_signer: Any = None, **env: str) -> None:
        self.config = settings(**{**FAST, **env})
        self.clock = Clock()
        self.sleep = Sleeper(self.clock)
        self.mailer = RecordingMailer()
        self.adapters = adapters
        for adapter in adapters:
            adapter.clock = self.clock
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.db = db_for(self.config)
        self.storage = storage_for(self.config)
        identity = build_identity_service(self.config, mailer=self.mailer, clock=self.clock)
        self.identity = identity
        common = {
            "adapters": lambda: list(self.adapters),
            "publish": lambda topic, payload: self.published.append((topic, payload)),
            "mailer": self.mailer,
            "clock": self.clock,
        }
        signing = {"url_signer": lambda: url_signer} if url_signer is not None else {}
        self.service: PrivacyService = build_privacy_service(
            self.config, identity=lambda: identity, **signing, **common
        )
        self.worker: PrivacyWorker = build_privacy_worker(
            self.config, sleep=self.sleep, monotonic=lambda: 0.0, **common
        )

    def seed(self, **kw: Any) -> Seeded:
        return seed_account(self.db, self.storage, self.config, now=self.clock(), **kw)

    def staff(self, *roles: str) -> Seeded:
        return seed_account(self.db, self.storage, self.config, files=(), roles=list(roles), now=self.clock())

    def request_doc(self, request_id: str) -> dict[str, Any] | None:
        snap = self.db.collection(PRIVACY_REQUESTS).document(request_id).get()
        return snap.to_dict() if snap.exists else None

    def record(self, request_id: str) -> dict[str, Any] | None:
        snap = self.db.collection(DELETION_RECORDS).document(request_id).get()
        return snap.to_dict() if snap.exists else None


def _steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return doc["steps"] if "steps" in doc and isinstance(doc["steps"], dict) else {s["name"]: s for s in doc["steps"]}


def _alerts(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        fields = getattr(record, "fields", None) or {}
        if fields.get("alert") == name:
            found.append(fields)
    return found


# -- erasure ------------------------------------------------------------------------------------------


@pytest.mark.policy("P28")
def test_dpo_erasure_empties_every_place_and_leaves_a_record_without_personal_data(stack: Any) -> None:
    h = Harness(stack, fake_adapters(), BACKUP_WINDOW_DAYS="7")
    seeded, dpo = h.seed(undeclared_subcollection=True), h.staff("dpo")
    before = remaining(h.db, h.storage, h.config, seeded.account.id)
    assert all(before[f"firestore:{c}"] for c in seeded.places if f"firestore:{c}" in before), before
    assert all(before[f"storage:{p.bucket_setting}"] for p in datamap.STORAGE), before

    receipt = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "Asked by phone, ticket 4711")
    assert receipt["status"] == "queued" and h.published == [
        ("privacy-jobs", {"kind": "run", "request_id": receipt["request_id"]})
    ]
    assert h.worker.run(receipt["request_id"]) == "completed"

    left = remaining(h.db, h.storage, h.config, seeded.account.id)
    assert not any(left.values()), f"data left behind: { {k: v for k, v in left.items() if v} }"
    # The email index is gone with the account: the address can register again as a new account.
    assert not h.db.collection(ACCOUNT_EMAILS).document(email_key(seeded.account.email)).get().exists
    passphrase = "a new and long passphrase 42"
    h.identity.registration.signup(seeded.account.email, passphrase, "Ada", "Again", "203.0.113.9", "UA")
    h.identity.registration.confirm(_token(h.mailer.sent[-1].text), passphrase, "203.0.113.9", "UA")
    again = h.db.collection(ACCOUNT_EMAILS).document(email_key(seeded.account.email)).get().to_dict()
    assert again and again["account_id"] != seeded.account.id

    # Every processor was asked once, with what it knows the person by.
    for adapter in h.adapters:
        assert [s.email for s in adapter.erase_calls] == [seeded.account.email], adapter.name
        assert adapter.erase_calls[0].firebase_uid == seeded.account.firebase_uid

    # The request itself (it held the email for the processors) is gone; the proof stays.
    assert h.request_doc(receipt["request_id"]) is None
    record = h.record(receipt["request_id"])
    assert record is not None and record["status"] == "complete" and record["account_id"] == seeded.account.id
    names = [s["name"] for s in record["steps"]]
    assert names[0] == "sessions" and names[-2:] == ["account", "notify"]
    assert {f"processor:{a.name}" for a in h.adapters} <= set(names)
    assert {f"storage:{p.bucket_setting}" for p in datamap.STORAGE} <= set(names)
    assert all(s["status"] in ("done", "not_found", "skipped") and s["attempts"] <= 1 for s in record["steps"])
    dumped = json.dumps(record, default=str)
    for personal in (seeded.account.email, seeded.account.last_name, "Ada", SEED_IP, "ticket 4711"):
        assert personal not in dumped, f"the deletion record holds {personal!r}"
    # The account holder was told, at the start (DPO erasure) and at the end.
    subjects = [m.subject for m in h.mailer.to(seeded.account.email)]
    assert subjects[:2] == ["Your account is being deleted", "Your account has been deleted"]
    # ...including how long disaster-recovery backups still hold earlier copies.
    assert (
        "backups" in h.mailer.to(seeded.account.email)[1].text
        and "up to 7 days" in h.mailer.to(seeded.account.email)[1].text
    )
    # The DPO sees the record.
    assert any(r["request_id"] == receipt["request_id"] for r in h.service.deletion_records())


@pytest.mark.policy("P11", "P26")
def test_stripe_is_asked_by_the_customer_id_billing_linked(stack: Any) -> None:
    """The Stripe step erases (and the export reads) the customer billing keeps in
    `billing_accounts/{account_id}.customer_id`, the document as BillingState writes it; there never was a
    `stripe_customer_id` field, so a worker reading that one would fall back to a search by email."""
    h = Harness(stack, fake_adapters())
    seeded, dpo = h.seed(), h.staff("dpo")
    customer_id = f"cus_{seeded.account.id[-10:]}"
    linked = BillingState(account_id=seeded.account.id, customer_id=customer_id, customer_generation=1)
    h.db.collection(BILLING_ACCOUNTS).document(seeded.account.id).set(linked.to_doc())
    stripe = next(a for a in h.adapters if a.name == "Stripe")

    export_id = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")["request_id"]
    assert h.worker.run(export_id) == "completed"
    assert [s.stripe_customer_id for s in stripe.export_calls] == [customer_id]

    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    assert h.worker.run(request_id) == "completed"
    assert [s.stripe_customer_id for s in stripe.erase_calls] == [customer_id]


def test_sessions_die_at_the_first_step(stack: Any) -> None:
    # The worker dies right after the first step: the account is already unusable.
    h = Harness(stack, fake_adapters(Google=[Killed()]))
    seeded, dpo = h.seed(), h.staff("dpo")
    assert h.identity.authenticate(seeded.token).account.id == seeded.account.id
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    with pytest.raises(Killed):
        h.worker.run(request_id)
    with pytest.raises(REFUSED) as refused:
        h.identity.authenticate(seeded.token)
    assert refusal(refused.value).status == 401
    assert h.db.collection(ACCOUNTS).document(seeded.account.id).get().to_dict()["status"] == "erasing"
    assert remaining(h.db, h.storage, h.config, seeded.account.id)["firestore:sessions"] == 0


def test_a_killed_worker_resumes_on_redelivery_and_erases_exactly_once(stack: Any) -> None:
    h = Harness(stack, fake_adapters(Zendesk=[Killed()]))
    seeded, dpo = h.seed(), h.staff("dpo")
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    job = PrivacyJob(request_id=request_id)
    message = _message()

    with pytest.raises(Killed):  # the worker process dies in the middle of the Zendesk step
        h.worker.handle(message, job)
    doc = h.request_doc(request_id)
    assert doc is not None and _steps(doc)["processor:Zendesk"]["status"] == "running"
    assert _steps(doc)["processor:Stripe"]["status"] == "done"

    # Redelivered while the dead worker's lease still runs: nacked, so Pub/Sub delivers again later.
    with pytest.raises(Busy):
        h.worker.handle(message, job)
    h.clock.advance(seconds=h.config.privacy_lease_seconds + 1)
    h.worker.handle(message, job)

    assert not any(remaining(h.db, h.storage, h.config, seeded.account.id).values())
    record = h.record(request_id)
    assert record is not None and record["status"] == "complete"
    attempts = {s["name"]: s["attempts"] for s in record["steps"]}
    assert attempts.pop("processor:Zendesk") == 2  # the step that was cut short ran again
    assert set(attempts.values()) <= {0, 1}, attempts  # every other step ran once (keep/expire: never)
    for adapter in h.adapters:
        assert len(adapter.erase_calls) == (2 if adapter.name == "Zendesk" else 1), adapter.name
    # A late duplicate of the message changes nothing.
    h.worker.handle(message, job)
    assert h.record(request_id) == record
    assert [m.subject for m in h.mailer.to(seeded.account.email)].count("Your account has been deleted") == 1


def test_a_worker_killed_by_sigkill_in_another_process_is_resumed(stack: Any, tmp_path: Any) -> None:
    """The same, with a real process killed with SIGKILL while it erases."""
    import signal
    import subprocess
    import sys
    import time

    h = Harness(stack, fake_adapters())
    seeded, dpo = h.seed(), h.staff("dpo")
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    marker = tmp_path / "in-stripe-step"
    script = f"""
import os, time
from pathlib import Path
from shared.bootstrap import build_privacy_worker
from shared.config import Settings
from tests.privacy_support import FakeAdapter, PROCESSOR_NAMES, RecordingMailer

class Hanging(FakeAdapter):
    def erase(self, subject):
        Path({str(marker)!r}).write_text("x")
        time.sleep(600)

adapters = [Hanging(n) if n == "Stripe" else FakeAdapter(n) for n in PROCESSOR_NAMES]
worker = build_privacy_worker(Settings.from_env(), adapters=lambda: adapters, mailer=RecordingMailer(),
                              publish=lambda topic, payload: None)
worker.run({request_id!r})
"""
    child = subprocess.Popen([sys.executable, "-c", script], cwd=str(Path(__file__).resolve().parents[2]))
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert child.poll() is None, "the worker process ended before the Stripe step"
            assert time.monotonic() < deadline, "the worker never reached the Stripe step"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    doc = h.request_doc(request_id)
    assert doc is not None and _steps(doc)["processor:Stripe"]["status"] == "running"
    # Redelivery after the lease ran out (the test's clock is ahead of the dead worker's).
    h.clock.advance(seconds=h.config.privacy_lease_seconds + 60)
    assert h.worker.run(request_id) == "completed"
    assert not any(remaining(h.db, h.storage, h.config, seeded.account.id).values())
    # Google was erased by the killed process and is not asked again; Stripe (cut short) and the rest run here.
    calls = {a.name: len(a.erase_calls) for a in h.adapters}
    assert calls == {name: 0 if name == "Google" else 1 for name in calls}, calls


@pytest.mark.policy("P24")
def test_processor_404_then_429_then_500_three_times(stack: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    h = Harness(
        stack,
        fake_adapters(
            Zendesk=[StepOutcome("not_found", "no such user")],
            Intercom=[StepOutcome("retry", "HTTP 429", retry_after=7)],
            HubSpot=[StepOutcome("retry", "HTTP 500")] * 3,
        ),
    )
    seeded, dpo = h.seed(), h.staff("dpo")
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]

    assert h.worker.run(request_id) == "needs_attention"
    # A 404 counts as erased; Retry-After was honoured; HubSpot was retried with backoff, then given up.
    steps = _steps(h.request_doc(request_id) or {})
    assert steps["processor:Zendesk"]["status"] == "not_found" and steps["processor:Zendesk"]["attempts"] == 1
    assert steps["processor:Intercom"]["status"] == "done" and steps["processor:Intercom"]["attempts"] == 2
    assert steps["processor:HubSpot"]["status"] == "failed" and steps["processor:HubSpot"]["attempts"] == 3
    assert steps["processor:HubSpot"]["last_error"] == "HTTP 500"
    intercom, hubspot = (next(a for a in h.adapters if a.name == n) for n in ("Intercom", "HubSpot"))
    assert intercom.called_at[1] - intercom.called_at[0] >= timedelta(seconds=7)
    gaps = [(b - a).total_seconds() for a, b in zip(hubspot.called_at, hubspot.called_at[1:], strict=False)]
    assert gaps == [1.0, 2.0], gaps
    # The failing processor blocked nothing else: every store is empty, the account is gone. Only the
    # request stays (it holds what HubSpot knows the person by, for the retry).
    left = {k: v for k, v in remaining(h.db, h.storage, h.config, seeded.account.id).items() if v}
    assert left == {"firestore:privacy_requests": 1}, left
    assert steps["notify"]["status"] == "pending", "the holder is not told it is done while it is not"
    alerts = _alerts(caplog, "privacy-step-failed")
    assert alerts and alerts[0]["step"] == "processor:HubSpot"
    assert _alerts(caplog, "privacy-request-needs-attention")
    record = h.record(request_id)
    assert record is not None and record["status"] == "incomplete"
    assert any(r["request_id"] == request_id for r in h.service.open_requests())

    # The DPO retries once HubSpot is back: only the failed steps run again.
    with pytest.raises(REFUSED):
        h.service.retry("prq_no_such_request")
    h.service.retry(request_id)
    assert h.worker.run(request_id) == "completed"
    assert len(hubspot.erase_calls) == 4
    assert all(len(a.erase_calls) == 1 for a in h.adapters if a.name not in ("HubSpot", "Intercom"))
    record = h.record(request_id)
    assert record is not None and record["status"] == "complete"
    assert h.request_doc(request_id) is None


def test_a_long_retry_wait_is_left_to_the_scheduled_check(stack: Any) -> None:
    h = Harness(stack, fake_adapters(Stripe=[StepOutcome("retry", "HTTP 429", retry_after=3600)]))
    seeded, dpo = h.seed(), h.staff("dpo")
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    assert h.worker.run(request_id) == "running"
    doc = h.request_doc(request_id) or {}
    assert doc["lease_owner"] is None and doc["run_after"] > h.clock()
    # Every other step went on meanwhile.
    assert sum(1 for s in _steps(doc).values() if s["status"] in ("done", "not_found", "skipped")) >= 5
    h.published.clear()
    h.worker.tick()
    assert ("privacy-jobs", {"kind": "run", "request_id": request_id}) not in h.published
    h.clock.advance(hours=1, seconds=1)
    h.worker.tick()
    assert ("privacy-jobs", {"kind": "run", "request_id": request_id}) in h.published
    assert h.worker.run(request_id) == "completed"


@pytest.mark.policy("P11")
def test_the_scheduled_check_sweeps_writes_that_land_after_an_erasure(stack: Any) -> None:
    """A product event delivered days late is archived under an account erased meanwhile (the aggregator
    may only create objects): the next scheduled check deletes it, for 8 days after the erasure."""
    h = Harness(stack, fake_adapters())
    erased, kept, dpo = h.seed(files=()), h.seed(files=()), h.staff("dpo")
    receipt = h.service.start_dpo_erasure(dpo.account.id, erased.account.id, "Asked by post")
    assert h.worker.run(receipt["request_id"]) == "completed"
    archive_bucket = h.storage.bucket(h.config.telemetry_archive_bucket)

    def late_event(account_id: str, n: int) -> str:
        name = f"product-events/account={account_id}/dt=2026-11-30/late-{n}.ndjson"
        archive_bucket.blob(name).upload_from_string(b'{"name": "report.exported"}\n')
        return name

    late = late_event(erased.account.id, 1)
    alive = late_event(kept.account.id, 1)
    h.clock.advance(days=3)
    assert h.worker.tick()["swept"] >= 1
    assert not archive_bucket.blob(late).exists(), "swept"
    assert archive_bucket.blob(alive).exists(), "a live account's events are left alone"

    # Once no redelivery can come any more, the erased account is no longer swept.
    h.clock.advance(days=6)
    later = late_event(erased.account.id, 2)
    h.worker.tick()
    assert archive_bucket.blob(later).exists()
    archive_bucket.blob(later).delete()
    archive_bucket.blob(alive).delete()


# -- the retention sweep's erasure (P27) --------------------------------------------------------------------


@pytest.mark.policy("P27")
def test_a_retention_erasure_runs_the_erasure_pipeline_once_and_its_record_says_so(stack: Any) -> None:
    h = Harness(stack, fake_adapters())
    seeded, dpo = h.seed(undeclared_subcollection=True), h.staff("dpo")
    receipt = h.service.start_retention_erasure(seeded.account.id, "no use for 12 months after cancellation")
    assert receipt["type"] == "retention" and receipt["status"] == "queued"
    assert receipt["scheduled_for"] is None and receipt["cancellable_until"] is None  # no grace period
    job = ("privacy-jobs", {"kind": "run", "request_id": receipt["request_id"]})
    # Idempotent: the sweep asking again, the DPO, the holder all find the open one.
    assert h.service.start_retention_erasure(seeded.account.id, "again")["request_id"] == receipt["request_id"]
    by_dpo = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "letter")
    assert by_dpo["request_id"] == receipt["request_id"]
    with pytest.raises(REFUSED) as open_already:
        h.service.create_request(seeded.principal, "erasure", None, "203.0.113.5", "UA")
    assert refusal(open_already.value).status == 409
    assert h.published == [job]
    assert h.mailer.to(seeded.account.email) == []  # no confirmation mail: the holder did not ask
    doc = h.request_doc(receipt["request_id"])
    assert doc is not None and doc["requested_by"] == "retention-sweep" and doc["type"] == "retention"

    assert h.worker.run(receipt["request_id"]) == "completed"
    left = remaining(h.db, h.storage, h.config, seeded.account.id)
    assert not any(left.values()), f"data left behind: { {k: v for k, v in left.items() if v} }"
    assert not h.db.collection(ACCOUNT_EMAILS).document(email_key(seeded.account.email)).get().exists
    for adapter in h.adapters:
        assert [s.email for s in adapter.erase_calls] == [seeded.account.email], adapter.name
    assert h.request_doc(receipt["request_id"]) is None
    record = h.record(receipt["request_id"])
    assert record is not None and record["status"] == "complete" and record["type"] == "retention"
    assert record["requested_by"] == "retention-sweep" and record["account_id"] == seeded.account.id
    names = [s["name"] for s in record["steps"]]
    assert names[0] == "sessions" and names[-2:] == ["account", "notify"]
    dumped = json.dumps(record, default=str)
    for personal in (seeded.account.email, seeded.account.last_name, SEED_IP, "12 months after"):
        assert personal not in dumped, f"the deletion record holds {personal!r}"
    assert [m.subject for m in h.mailer.to(seeded.account.email)] == ["Your account has been deleted"]
    # Once erased, the account is gone: the sweep asking again is told so, and nothing is queued.
    with pytest.raises(REFUSED) as gone:
        h.service.start_retention_erasure(seeded.account.id, "again")
    assert refusal(gone.value).status == 404 and h.published == [job]


@pytest.mark.policy("P27")
def test_a_retention_erasure_returns_the_erasure_already_open(stack: Any) -> None:
    h = Harness(stack, fake_adapters())
    seeded, dpo = h.seed(files=()), h.staff("dpo")
    started = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "letter")
    again = h.service.start_retention_erasure(seeded.account.id, "retention")
    assert again["request_id"] == started["request_id"] and again["type"] == "erasure"
    assert len(h.published) == 1
    assert h.worker.run(started["request_id"]) == "completed"
    record = h.record(started["request_id"])
    assert record is not None and record["type"] == "erasure" and record["requested_by"] == "dpo"


# -- the account holder's erasure: re-authentication, grace period, cancellation ------------------------


def test_holder_erasure_needs_reauthentication_and_can_be_cancelled_in_its_grace_period(stack: Any) -> None:
    h = Harness(stack, fake_adapters(), ERASURE_GRACE_HOURS="24")
    password = "correct horse battery staple 9"
    h.identity.registration.signup(f"holder.{id(h)}@example.com", password, "Ada", "Holder", "203.0.113.5", "UA")
    email = h.mailer.sent[-1].to
    h.identity.registration.confirm(_token(h.mailer.sent[-1].text), password, "203.0.113.5", "UA")
    _token_, _record, account = h.identity.signin.signin(email, password, "203.0.113.5", "UA")
    principal = h.identity.authenticate(_token_)

    with pytest.raises(REFUSED) as refused:
        h.service.create_request(principal, "erasure", None, "203.0.113.5", "UA")
    assert refusal(refused.value).slug == "reauthentication-required"
    with pytest.raises(REFUSED) as wrong:
        h.service.create_request(principal, "erasure", Proof(current_password="not the password"), "203.0.113.5", "UA")
    assert refusal(wrong.value).slug == "invalid-current-password"

    receipt = h.service.create_request(principal, "erasure", Proof(current_password=password), "203.0.113.5", "UA")
    assert receipt["status"] == "scheduled"
    assert receipt["due_at"] > receipt["cancellable_until"]
    mail = h.mailer.to(email)[-1]
    # The link opens the app's page; request and token ride in the fragment, never in a query string.
    assert mail.subject == "Your account will be deleted"
    assert f"{h.config.app_url}/privacy/cancel#request={receipt['request_id']}&token=" in mail.text
    assert "?token=" not in mail.text and "&token=" not in mail.text.split("#", 1)[0]
    # A second erasure request while one is open is refused.
    with pytest.raises(REFUSED) as twice:
        h.service.create_request(principal, "erasure", Proof(current_password=password), "203.0.113.5", "UA")
    assert refusal(twice.value).status == 409
    # The worker does nothing during the grace period; the holder cancels with the link.
    assert h.worker.run(receipt["request_id"]) == "scheduled"
    assert h.identity.authenticate(_token_).account.status == "active"
    with pytest.raises(REFUSED):
        h.service.cancel_with_token(receipt["request_id"], "forged")
    cancelled = h.service.cancel_with_token(receipt["request_id"], _token(mail.text))
    assert cancelled.status == "cancelled"
    assert h.worker.run(receipt["request_id"]) == "cancelled"
    assert h.db.collection(ACCOUNTS).document(account.id).get().exists


def test_holder_erasure_runs_after_its_grace_period(stack: Any) -> None:
    h = Harness(stack, fake_adapters(), ERASURE_GRACE_HOURS="24")
    seeded = h.seed()
    h.db.collection(ACCOUNTS).document(seeded.account.id).update({"password_hash": None, "google_subject": "g-1"})
    google = seeded.session
    google.method = "google"
    seeded.account.password_hash, seeded.account.google_subject = None, "g-1"
    # A Google account proves itself with a fresh Google sign-in; a step-up made in this session a while
    # ago (past the window) does not count any more, one made a minute ago does.
    google.reauthenticated_at = h.clock() - timedelta(minutes=h.config.reauth_minutes, seconds=1)
    with pytest.raises(REFUSED) as stale:
        h.service.create_request(seeded.principal, "erasure", None, "203.0.113.5", "UA")
    assert refusal(stale.value).status == 403 and refusal(stale.value).slug == "reauthentication-required"
    google.reauthenticated_at = h.clock() - timedelta(minutes=1)
    receipt = h.service.create_request(seeded.principal, "erasure", None, "203.0.113.5", "UA")
    h.clock.advance(hours=24, seconds=1)
    with pytest.raises(REFUSED) as late:
        h.service.cancel(seeded.principal, receipt["request_id"])
    assert refusal(late.value).status == 409
    h.worker.tick()
    assert ("privacy-jobs", {"kind": "run", "request_id": receipt["request_id"]}) in h.published
    assert h.worker.run(receipt["request_id"]) == "completed"
    assert not any(remaining(h.db, h.storage, h.config, seeded.account.id).values())


@pytest.mark.policy("P26")
def test_requests_still_open_7_days_before_their_due_date_raise_an_alert(
    stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    h = Harness(stack, fake_adapters(Stripe=[StepOutcome("retry", "HTTP 503", retry_after=10 * 86400)]))
    seeded, dpo = h.seed(), h.staff("dpo")
    request_id = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "test")["request_id"]
    h.worker.run(request_id)
    h.worker.tick()
    assert not [a for a in _alerts(caplog, "privacy-request-deadline") if a["request_id"] == request_id]
    h.clock.advance(days=24)
    h.worker.tick()
    h.worker.tick()  # once a day, not on every check
    alerts = [a for a in _alerts(caplog, "privacy-request-deadline") if a["request_id"] == request_id]
    assert len(alerts) == 1 and alerts[0]["status"] == "running"
    h.db.collection(PRIVACY_REQUESTS).document(request_id).update({"status": "cancelled"})  # leave no open request


# -- export -------------------------------------------------------------------------------------------


@pytest.mark.policy("P26", "P20")
def test_export_round_trip_and_only_its_holder_sees_it(stack: Any) -> None:
    h = Harness(stack, fake_adapters(HubSpot=[StepOutcome("not_found", "no contact")]))
    seeded, other = h.seed(), h.seed(files=())
    h.service.audit.record("acc_staff", "test.read", target_account_id=seeded.account.id, reason="t", roles=["support"])
    receipt = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")
    assert receipt["status"] == "queued"
    with pytest.raises(REFUSED) as early:
        h.service.download(seeded.principal, receipt["request_id"])
    assert refusal(early.value).status == 409
    assert h.worker.run(receipt["request_id"]) == "completed"

    view = h.service.get_request(seeded.principal, receipt["request_id"])
    assert view["export"]["ready"] and [s["status"] for s in view["steps"]][-2:] == ["done", "done"]
    download = h.service.download(seeded.principal, receipt["request_id"])
    assert isinstance(download, ArchiveDownload) and download.content_type == "application/zip"
    assert download.filename == f"wizyvision-export-{receipt['request_id']}.zip"
    content = b"".join(download.chunks)
    assert download.size == len(content)
    archive = zipfile.ZipFile(io.BytesIO(content))
    names = set(archive.namelist())
    categories = {p.category for p in (*datamap.FIRESTORE, *datamap.SYSTEM) if p.export}
    assert {f"{c}.json" for c in categories} <= names
    assert {f"processors/{a.name}.json" for a in h.adapters} <= names
    for name in names:
        if name.endswith(".json"):
            json.loads(archive.read(name))
    profile = json.loads(archive.read("profile.json"))
    account = profile["places"][0]["records"][0]
    assert account["email"] == seeded.account.email and "password_hash" not in account
    sessions = json.loads(archive.read("sessions.json"))["places"][0]["records"]
    assert sessions and "token_hash" not in sessions[0] and sessions[0]["ip"] == SEED_IP
    audit = json.loads(archive.read("audit.json"))["places"][0]["records"]
    assert audit and "actor_id" not in audit[0]
    for bucket, name, content in seeded.objects:
        if bucket == h.config.business_data_bucket:
            assert archive.read("business_files/" + name.split("/", 2)[2]) == content
    manifest = json.loads(archive.read("manifest.json"))
    assert set(manifest["categories"]) == categories
    assert manifest["files"]["business_files"]["count"] == 2
    assert json.loads(archive.read("processors/Stripe.json"))["found"] is True
    # The staging files of the processors' exports are gone; only the archive remains.
    staged = list(
        h.storage.list_blobs(h.config.exports_bucket, prefix=f"exports/{seeded.account.id}/{receipt['request_id']}/")
    )
    assert staged == []
    assert h.mailer.to(seeded.account.email)[-1].subject == "Your data export is ready"

    # Another account neither sees nor downloads it (P20).
    for call in (h.service.get_request, h.service.download, h.service.cancel):
        with pytest.raises(REFUSED) as hidden:
            call(other.principal, receipt["request_id"])
        assert refusal(hidden.value).status == 404
    assert receipt["request_id"] not in [r["request_id"] for r in h.service.list_requests(other.principal)]

    # Never served after 7 days (the bucket's lifecycle rule deletes it too).
    h.clock.advance(days=7, seconds=1)
    with pytest.raises(REFUSED) as gone:
        h.service.download(seeded.principal, receipt["request_id"])
    assert refusal(gone.value).status == 410


def _verify_v4_signature(url: str, public_key: rsa.RSAPublicKey) -> dict[str, str]:
    """Recompute the string a V4 signed URL signs (Cloud Storage's documented canonical request) and verify
    its signature with the signer's public key; returns the URL's query parameters."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))
    canonical_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items()))
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = "\n".join(["GOOG4-RSA-SHA256", params["X-Goog-Date"], scope, digest])
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    return params


@pytest.mark.policy("P20")
def test_in_production_an_export_is_served_as_a_short_lived_signed_url(stack: Any) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = service_account.Credentials.from_service_account_info(
        {
            "type": "service_account",
            "client_email": "privacy@demo-project.iam.gserviceaccount.com",
            "private_key": pem.decode(),
            "private_key_id": "test",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
    h = Harness(stack, fake_adapters(), url_signer=signer, EXPORT_SIGNED_URLS="true")
    seeded, other = h.seed(), h.seed(files=())
    receipt = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")
    assert h.worker.run(receipt["request_id"]) == "completed"
    export = (h.request_doc(receipt["request_id"]) or {})["export"]

    signed = h.service.download(seeded.principal, receipt["request_id"])
    assert isinstance(signed, SignedDownload) and signed.expires_at == h.clock() + timedelta(minutes=15)
    params = _verify_v4_signature(signed.url, key.public_key())
    assert urlsplit(signed.url).path == f"/{export['bucket']}/{export['object']}"
    assert params["X-Goog-Expires"] == "900", "15 minutes"
    longer = signed.url.replace("X-Goog-Expires=900", "X-Goog-Expires=90000")
    with pytest.raises(InvalidSignature):
        _verify_v4_signature(longer, key.public_key())
    assert params["X-Goog-Credential"].startswith("privacy@demo-project.iam.gserviceaccount.com/")
    filename = f"wizyvision-export-{receipt['request_id']}.zip"
    assert params["response-content-disposition"] == f'attachment; filename="{filename}"'

    # Five minutes before the export is deleted, the link lives five minutes, not fifteen.
    h.clock.advance(days=7, seconds=-300)
    shorter = h.service.download(seeded.principal, receipt["request_id"])
    assert isinstance(shorter, SignedDownload)
    params = _verify_v4_signature(shorter.url, key.public_key())
    assert params["X-Goog-Expires"] == "300"
    with pytest.raises(REFUSED) as hidden:
        h.service.download(other.principal, receipt["request_id"])
    assert refusal(hidden.value).status == 404, "another account gets no link (P20)"


@pytest.mark.policy("P26")
def test_export_memory_does_not_grow_with_the_files(stack: Any) -> None:
    """The archive is streamed: exporting 24 MB of files allocates no more than exporting a few bytes."""
    import tracemalloc

    h = Harness(stack, fake_adapters())
    small, big = h.seed(files=(("a.bin", b"x"),)), h.seed(files=[(f"f{i}.bin", bytes(8 * 2**20)) for i in range(3)])
    peaks = []
    for seeded in (small, big):
        request_id = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")["request_id"]
        tracemalloc.start()
        assert h.worker.run(request_id) == "completed"
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 24 * 2**20 / 2, peaks


def _token(text: str) -> str:
    import re
    from urllib.parse import unquote

    found = re.search(r"token=([\w\-%]+)", text)
    assert found
    return unquote(found.group(1))


def _message() -> Any:
    from datetime import UTC, datetime

    from shared.events import PubSubMessage

    return PubSubMessage(message_id="m-1", data=b"{}", publish_time=datetime.now(UTC))


@pytest.mark.policy("P26")
def test_an_export_never_outlives_an_erasure_that_started_meanwhile(stack: Any) -> None:
    h = Harness(stack, fake_adapters())
    seeded = h.seed()
    request_id = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")["request_id"]
    h.db.collection(ACCOUNTS).document(seeded.account.id).update({"status": "erasing"})
    assert h.worker.run(request_id) == "needs_attention"
    steps = _steps(h.request_doc(request_id) or {})
    assert steps["archive"]["status"] == "failed" and steps["notify"]["status"] == "pending"
    left = list(h.storage.list_blobs(h.config.exports_bucket, prefix=f"exports/{seeded.account.id}/{request_id}"))
    assert left == []
    h.db.collection(PRIVACY_REQUESTS).document(request_id).update({"status": "cancelled"})  # leave no open request


@pytest.mark.policy("P28")
def test_a_processor_export_in_flight_when_an_erasure_runs_leaves_nothing_behind(stack: Any) -> None:
    """The whole erasure runs while a processor's export call is on the wire: what that call then brings
    back must not land in the exports bucket after the erasure emptied it."""
    h = Harness(stack, fake_adapters())
    seeded, dpo = h.seed(), h.staff("dpo")
    export_id = h.service.create_request(seeded.principal, "export", None, "203.0.113.5", "UA")["request_id"]
    first = h.adapters[0]
    erased: list[str] = []

    def export_during_erasure(subject: Any) -> dict[str, Any]:
        if not erased:
            receipt = h.service.start_dpo_erasure(dpo.account.id, seeded.account.id, "Asked by post")
            erased.append(h.worker.run(receipt["request_id"]))
        return FakeAdapter.export(first, subject)

    first.export = export_during_erasure  # type: ignore[method-assign]
    h.worker.run(export_id)

    assert erased == ["completed"]
    left = remaining(h.db, h.storage, h.config, seeded.account.id)
    assert not any(left.values()), f"data left behind: { {k: v for k, v in left.items() if v} }"


@pytest.mark.policy("P10", "P28")
def test_staff_roles_change_through_the_account_store_and_the_last_admin_keeps_the_role(stack: Any) -> None:
    """Roles are read and written through the identity store; an account is never left without an admin.
    A Firestore project of its own: "last admin" counts every admin of the project."""
    h = Harness(stack, fake_adapters())
    db = firestore.Client(project=f"roles-{secrets.token_hex(4)}")
    service = build_privacy_service(h.config, accounts=FirestoreAccounts(db), publish=lambda *_: None)
    ids = []
    for name in ("Ada", "Grace"):
        account = Account(
            id=f"acc_{name.lower()}_{secrets.token_hex(3)}",
            email=f"{name.lower()}.{secrets.token_hex(3)}@example.com",
            first_name=name,
            last_name="Admin",
            created_at=h.clock(),
            roles=["admin"],
        )
        db.collection(ACCOUNTS).document(account.id).set(account.to_doc())
        ids.append(account.id)
    first, second = ids
    try:
        changed = service.set_roles("cli", first, None, "handover", remove=("admin",))
        assert changed["roles"] == [] and changed["previous_roles"] == ["admin"]
        with pytest.raises(REFUSED) as last:
            service.set_roles("cli", second, None, "leaving", remove=("admin",))
        assert refusal(last.value).status == 409 and refusal(last.value).slug == "last-admin"
        assert service.set_roles("cli", second, None, "also dpo", add=("dpo",))["roles"] == ["admin", "dpo"]
        assert (db.collection(ACCOUNTS).document(second).get().to_dict() or {})["roles"] == ["admin", "dpo"]
        with pytest.raises(REFUSED) as unknown:
            service.set_roles("cli", second, ["root"], "no such role")
        assert refusal(unknown.value).status == 422 and refusal(unknown.value).title == "Unknown role"
        with pytest.raises(REFUSED) as missing:
            service.set_roles("cli", "acc_nobody", ["dpo"], "no such account")
        assert refusal(missing.value).status == 404
    finally:
        for account_id in ids:
            db.collection(ACCOUNTS).document(account_id).delete()
