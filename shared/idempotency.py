"""Do a piece of work once, whatever the retries: idempotency records in Firestore.

In the manner of AWS Lambda Powertools' idempotency utility. Work is named by a key chosen by the
caller ("stripe-event:evt_123", "pubsub:<message id>", "billing-mail:receipt:in_123"). Before doing
it, the caller claims the key: a conditional write inside a Firestore transaction creates or takes
over `idempotency_records/<sha256(key)>`:

==============  ===================================================================================
record          what a claim does
==============  ===================================================================================
none / expired  claims it: state `in_progress`, a lease (`lease_until`) and a fencing token
in_progress     raises `InProgress` while the lease lives (another worker is on it: retry later);
                takes it over once the lease has run out (that worker died)
completed       returns `Completed` with the stored result (the work was done: do nothing)
failed          claims it again (a failed attempt may be retried)
==============  ===================================================================================

`complete` and `fail` are fenced by the token: a worker whose lease was taken over cannot overwrite
the record of the one that took it. Every record carries `expire_at` (a Firestore TTL field): a
completed key is remembered for `ttl`, after which the same key is new work again.

The record holds no payload and not even the key, only its SHA-256 and a `scope` label, so no
personal data ever lands in this collection. Results are small JSON-able dicts.

Use it as calls (`claim` / `complete` / `fail` / `release`), as `run(key, fn)`, or as a decorator::

    store = IdempotencyStore(db)

    @idempotent(lambda: store, key=lambda message: f"pubsub:{message.id}", scope="pubsub")
    def handle(message) -> dict: ...
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec

from google.cloud import firestore

from shared.adapters.firestore import transact
from shared.observability import get_logger

log = get_logger(__name__)

COLLECTION = "idempotency_records"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"

DEFAULT_LEASE = timedelta(minutes=2)
DEFAULT_TTL = timedelta(days=7)

Clock = Callable[[], datetime]
P = ParamSpec("P")


def utcnow() -> datetime:
    return datetime.now(UTC)


class IdempotencyError(Exception):
    """Base of the errors of this module."""


class InProgress(IdempotencyError):
    """Another worker holds a live lease on the key: try again later (HTTP 409, a Pub/Sub nack)."""

    def __init__(self, key: str, retry_after: int) -> None:
        super().__init__(f"work {record_id(key)[:12]}… is in progress elsewhere; retry in {retry_after}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Claim:
    """The right to do the work of `key` until `lease_until` (fenced by `token`)."""

    key: str
    token: str
    attempt: int
    lease_until: datetime


@dataclass(frozen=True)
class Completed:
    """The work of `key` was already done; `result` is what the first run stored."""

    key: str
    result: dict[str, Any] | None


def record_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class IdempotencyStore:
    """Idempotency records over one Firestore collection. Thread-safe; one per process is enough."""

    def __init__(
        self,
        db: firestore.Client,
        *,
        collection: str = COLLECTION,
        lease: timedelta = DEFAULT_LEASE,
        ttl: timedelta = DEFAULT_TTL,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.collection = collection
        self.lease = lease
        self.ttl = ttl
        self.clock = clock

    def _ref(self, key: str) -> firestore.DocumentReference:
        return self.db.collection(self.collection).document(record_id(key))

    # -- the three steps ----------------------------------------------------------------------
    def claim(
        self, key: str, *, scope: str = "", lease: timedelta | None = None, ttl: timedelta | None = None
    ) -> Claim | Completed:
        """Claim `key` for this worker, or learn it was done. Raises `InProgress`."""
        ref = self._ref(key)
        lease = lease or self.lease
        ttl = ttl or self.ttl

        def run(tx: firestore.Transaction) -> Claim | Completed:
            snap = ref.get(transaction=tx)
            now = self.clock()
            data = (snap.to_dict() or {}) if snap.exists else {}
            live = bool(data) and data.get("expire_at") is not None and data["expire_at"] > now
            attempts = int(data.get("attempts", 0)) if live else 0
            if live and data.get("status") == COMPLETED:
                return Completed(key, data.get("result"))
            if live and data.get("status") == IN_PROGRESS and data["lease_until"] > now:
                raise InProgress(key, max(1, int((data["lease_until"] - now).total_seconds()) + 1))
            token = secrets.token_hex(16)
            until = now + lease
            tx.set(
                ref,
                {
                    "scope": scope,
                    "status": IN_PROGRESS,
                    "token": token,
                    "attempts": attempts + 1,
                    "lease_until": until,
                    "created_at": data.get("created_at", now) if live else now,
                    "updated_at": now,
                    "expire_at": now + max(ttl, lease),
                    "error": data.get("error") if live else None,
                    "result": None,
                },
            )
            return Claim(key, token, attempts + 1, until)

        return transact(self.db, run)

    def complete(self, claim: Claim, result: dict[str, Any] | None = None, ttl: timedelta | None = None) -> bool:
        """Record the work as done. False (and nothing written) when another worker took the key over."""
        now = self.clock()
        return self._finish(
            claim,
            {
                "status": COMPLETED,
                "result": result,
                "updated_at": now,
                "lease_until": now,
                "expire_at": now + (ttl or self.ttl),
            },
        )

    def fail(self, claim: Claim, error: str) -> bool:
        """Record the attempt as failed: the next claim may try again. `error` is a short label, never data."""
        now = self.clock()
        return self._finish(
            claim,
            {"status": FAILED, "error": error[:200], "updated_at": now, "lease_until": now},
        )

    def release(self, claim: Claim) -> bool:
        """Forget the claim, as if it was never made (the work was not started)."""
        ref = self._ref(claim.key)

        def run(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            if not snap.exists or (snap.to_dict() or {}).get("token") != claim.token:
                return False
            tx.delete(ref)
            return True

        return transact(self.db, run)

    def _finish(self, claim: Claim, changes: dict[str, Any]) -> bool:
        ref = self._ref(claim.key)

        def run(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            if not snap.exists or (snap.to_dict() or {}).get("token") != claim.token:
                return False
            tx.update(ref, changes)
            return True

        done = transact(self.db, run)
        if not done:
            log.warning("idempotency lease lost", record=record_id(claim.key)[:12], status=changes["status"])
        return done

    # -- conveniences ---------------------------------------------------------------------------
    def record(self, key: str) -> dict[str, Any] | None:
        """The stored record of `key` (for operators and tests)."""
        snap = self._ref(key).get()
        return (snap.to_dict() or {}) if snap.exists else None

    def run(self, key: str, fn: Callable[[], dict[str, Any] | None], *, scope: str = "") -> dict[str, Any] | None:
        """Run `fn` once for `key`: its result, or the stored result of the run that already did it.

        An exception from `fn` marks the record failed and propagates (the caller retries).
        """
        claim = self.claim(key, scope=scope)
        if isinstance(claim, Completed):
            return claim.result
        try:
            result = fn()
        except BaseException as exc:
            self._fail_quietly(claim, type(exc).__name__)
            raise
        self.complete(claim, result)
        return result

    def _fail_quietly(self, claim: Claim, error: str) -> None:
        try:
            self.fail(claim, error)
        except Exception:  # the store itself is down: the lease runs out and the key is claimable again
            log.warning("idempotency record not marked failed", record=record_id(claim.key)[:12], error=error)


def idempotent(
    store: Callable[[], IdempotencyStore], *, key: Callable[P, str], scope: str = ""
) -> Callable[[Callable[P, dict[str, Any] | None]], Callable[P, dict[str, Any] | None]]:
    """Decorate a handler so that it runs once per `key(*args, **kwargs)` (see `IdempotencyStore.run`)."""

    def decorate(fn: Callable[P, dict[str, Any] | None]) -> Callable[P, dict[str, Any] | None]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any] | None:
            return store().run(key(*args, **kwargs), lambda: fn(*args, **kwargs), scope=scope)

        return wrapper

    return decorate
