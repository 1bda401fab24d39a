"""The generic idempotency records (shared/idempotency.py) on the Firestore emulator, with a controlled clock.

Webhook and Pub/Sub handlers rely on it to make a redelivery a no-op (P13: Stripe webhooks are
idempotent; P11: resumable jobs).
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from shared.idempotency import (
    COLLECTION,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    Claim,
    Completed,
    IdempotencyStore,
    InProgress,
    idempotent,
    record_id,
)

pytestmark = pytest.mark.policy("P13")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture
def store(db: firestore.Client, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(db, lease=timedelta(seconds=60), ttl=timedelta(days=1), clock=clock)


def new_key() -> str:
    return f"test:{secrets.token_hex(8)}"


def test_first_claim_wins_and_a_completed_key_returns_its_result(store: IdempotencyStore) -> None:
    key = new_key()
    claim = store.claim(key, scope="test")
    assert isinstance(claim, Claim) and claim.attempt == 1
    assert store.record(key)["status"] == IN_PROGRESS
    assert store.complete(claim, {"answer": 42})
    again = store.claim(key, scope="test")
    assert again == Completed(key, {"answer": 42})
    assert store.record(key)["status"] == COMPLETED


def test_a_live_lease_refuses_a_second_worker_and_an_expired_one_is_taken_over(
    store: IdempotencyStore, clock: Clock
) -> None:
    key = new_key()
    first = store.claim(key)
    assert isinstance(first, Claim)
    with pytest.raises(InProgress) as refused:
        store.claim(key)
    assert 1 <= refused.value.retry_after <= 61
    clock.advance(seconds=61)  # the first worker died: its lease ran out
    second = store.claim(key)
    assert isinstance(second, Claim) and second.attempt == 2
    # Fencing: the dead worker cannot overwrite the record of the one that took over.
    assert store.complete(first, {"by": "first"}) is False
    assert store.fail(first, "Late") is False
    assert store.complete(second, {"by": "second"})
    assert store.claim(key) == Completed(key, {"by": "second"})


def test_a_failed_attempt_can_be_claimed_again(store: IdempotencyStore) -> None:
    key = new_key()
    claim = store.claim(key)
    assert isinstance(claim, Claim)
    assert store.fail(claim, "ServiceUnavailable")
    record = store.record(key)
    assert record["status"] == FAILED and record["error"] == "ServiceUnavailable"
    retry = store.claim(key)
    assert isinstance(retry, Claim) and retry.attempt == 2


def test_records_expire_then_the_key_is_new_work(store: IdempotencyStore, clock: Clock) -> None:
    key = new_key()
    claim = store.claim(key)
    assert isinstance(claim, Claim)
    store.complete(claim, None, ttl=timedelta(hours=1))
    record = store.record(key)
    assert record["expire_at"] == clock.now + timedelta(hours=1)  # the Firestore TTL field
    clock.advance(hours=1, seconds=1)
    fresh = store.claim(key)
    assert isinstance(fresh, Claim) and fresh.attempt == 1


def test_release_forgets_a_claim(store: IdempotencyStore) -> None:
    key = new_key()
    claim = store.claim(key)
    assert isinstance(claim, Claim)
    assert store.release(claim)
    assert store.record(key) is None


def test_concurrent_claims_of_one_key_do_the_work_once(store: IdempotencyStore) -> None:
    key = new_key()
    done: list[int] = []
    outcomes: list[str] = []
    barrier = threading.Barrier(6)
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        try:
            result = store.run(key, lambda: (done.append(n), {"worker": n})[1])
            with lock:
                outcomes.append("done" if result == {"worker": n} else "completed-before")
        except InProgress:
            with lock:
                outcomes.append("in-progress")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(done) == 1, outcomes
    assert outcomes.count("done") == 1
    assert len(outcomes) == 6


def test_run_marks_failure_and_propagates(store: IdempotencyStore) -> None:
    key = new_key()

    def boom() -> dict[str, Any]:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        store.run(key, boom)
    assert store.record(key)["status"] == FAILED
    assert store.run(key, lambda: {"ok": True}) == {"ok": True}
    assert store.run(key, lambda: {"ok": False}) == {"ok": True}


def test_decorator_runs_a_handler_once_per_key(store: IdempotencyStore) -> None:
    calls: list[str] = []

    @idempotent(lambda: store, key=lambda message_id, _payload: f"pubsub:{message_id}", scope="pubsub")
    def handle(message_id: str, payload: str) -> dict[str, Any]:
        calls.append(payload)
        return {"handled": payload}

    message_id = secrets.token_hex(6)
    assert handle(message_id, "first") == {"handled": "first"}
    assert handle(message_id, "redelivery") == {"handled": "first"}
    assert calls == ["first"]


def test_records_hold_no_key_and_no_payload(store: IdempotencyStore, db: firestore.Client) -> None:
    key = f"billing-mail:receipt:ada.{secrets.token_hex(4)}@example.com"
    store.run(key, lambda: {"sent": True}, scope="billing-mail")
    snap = db.collection(COLLECTION).document(record_id(key)).get()
    text = repr(snap.to_dict())
    assert snap.exists and "@example.com" not in text and key not in text
    assert snap.to_dict()["scope"] == "billing-mail"
