"""The identity stores: each owns its Firestore collections; use cases see only these methods.

Every store has an in-memory twin in `shared/identity/memory.py` with the same behaviour (tests of
the use cases run on those in milliseconds); the emulator tests prove the Firestore ones.
Atomic steps (an account and its email index, a single-use token, a throttle reservation) are one
Firestore transaction each, hidden behind one method.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.errors import Conflict, InvalidToken, NotFound, Throttled
from shared.identity.model import (
    ACCOUNT_EMAILS,
    ACCOUNTS,
    GOOGLE_IDENTITIES,
    PENDING_SIGNUPS,
    SECURITY_EVENTS,
    SESSIONS,
    SIGNIN_THROTTLE,
    VERIFICATION_TOKENS,
    Account,
    PendingSignup,
    SessionRecord,
)
from shared.identity.throttle import HOUR, ThrottleState, reserve_attempt, retry_after
from shared.identity.tokens import email_key, new_token, token_hash
from shared.observability import get_logger

log = get_logger(__name__)

ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}")  # no slash, no dot, no reserved __name__


def _data(snap: firestore.DocumentSnapshot | None) -> dict[str, Any] | None:
    return snap.to_dict() if snap is not None and snap.exists else None


def link_refused(detail: str = "This link is invalid or was already used.") -> InvalidToken:
    return InvalidToken("invalid-token", detail)


# --- protocols ----------------------------------------------------------------------------------------


class AccountStore(Protocol):
    def get(self, account_id: str) -> Account | None: ...
    def find_by_email(self, email: str) -> Account | None: ...
    def create(self, account: Account) -> None: ...
    def update(self, account_id: str, changes: dict[str, Any]) -> None: ...
    def change_email(self, account_id: str, old_email: str, new_email: str, changes: dict[str, Any]) -> None: ...
    def link_google(
        self, subject: str, fresh: Account, link: Callable[[Account], dict[str, Any]]
    ) -> tuple[str, str]: ...
    def claim_totp_step(self, account_id: str, step: int) -> bool: ...
    def spend_recovery_code(self, account_id: str, digest: str) -> bool: ...
    def with_role(self, role: str) -> list[Account]: ...
    def change_roles(
        self, account_id: str, wanted: Callable[[list[str]], list[str]], guard: str, now: datetime
    ) -> tuple[list[str], list[str]]: ...
    def status(self, account_id: str) -> str | None: ...
    def transition(
        self, account_id: str, decide: Callable[[Account], dict[str, Any] | None]
    ) -> tuple[Account, bool]: ...


class SessionStore(Protocol):
    def get(self, hashed: str) -> SessionRecord | None: ...
    def add(self, record: SessionRecord) -> None: ...
    def update(self, hashed: str, changes: dict[str, Any]) -> None: ...
    def delete(self, hashed: str) -> None: ...
    def of_account(self, account_id: str) -> list[SessionRecord]: ...
    def delete_many(self, hashes: Iterable[str]) -> None: ...


class TokenStore(Protocol):
    def issue(self, account_id: str, purpose: str, expires_at: datetime, now: datetime, **data: Any) -> str: ...
    def consume(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]: ...
    def peek(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]: ...
    def restore(self, token: str, data: dict[str, Any]) -> None: ...


class PendingSignupStore(Protocol):
    def add(self, pending: PendingSignup) -> str: ...
    def get(self, token: str, now: datetime) -> PendingSignup: ...
    def renew(self, email: str, expires_at: datetime) -> tuple[str, PendingSignup] | None: ...
    def clear_address(self, email: str) -> None: ...


class ThrottleStore(Protocol):
    def reserve(self, keys: list[str], now: datetime) -> bool: ...
    def release(self, keys: list[str], at: datetime, clear: list[str]) -> None: ...


class SecurityEventStore(Protocol):
    def add(
        self, account_id: str, kind: str, now: datetime, ip: str = "", user_agent: str = "", **details: Any
    ) -> None: ...
    def of_account(self, account_id: str, limit: int) -> list[dict[str, Any]]: ...


@dataclass
class IdentityStores:
    """The stores of the identity aggregate, wired together (Firestore in production, memory in tests).

    `unit_of_work()` groups the plain writes made inside it (sets, updates, new events) into one
    commit: a sign-in writes its session, the account's devices and its security event in one round
    trip. Reads and transactions inside it run at once, as outside.
    """

    accounts: AccountStore
    sessions: SessionStore
    tokens: TokenStore
    pending: PendingSignupStore
    throttle: ThrottleStore
    events: SecurityEventStore
    unit_of_work: Callable[[], AbstractContextManager[None]] = nullcontext


class Writes:
    """Plain writes, sent at once, or into the thread's open batch inside `unit_of_work()`."""

    def __init__(self, db: firestore.Client) -> None:
        self.db = db
        self._local = threading.local()

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        if getattr(self._local, "batch", None) is not None:  # nested: the outer one commits
            yield
            return
        self._local.batch = self.db.batch()
        try:
            yield
            batch, self._local.batch = self._local.batch, None
            batch.commit()
        finally:
            self._local.batch = None

    def set(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> None:
        batch = getattr(self._local, "batch", None)
        batch.set(ref, data) if batch is not None else ref.set(data)

    def update(self, ref: firestore.DocumentReference, changes: dict[str, Any]) -> None:
        batch = getattr(self._local, "batch", None)
        batch.update(ref, changes) if batch is not None else ref.update(changes)

    def merge(self, ref: firestore.DocumentReference, changes: dict[str, Any]) -> None:
        batch = getattr(self._local, "batch", None)
        batch.set(ref, changes, merge=True) if batch is not None else ref.set(changes, merge=True)

    def delete(self, ref: firestore.DocumentReference) -> None:
        batch = getattr(self._local, "batch", None)
        batch.delete(ref) if batch is not None else ref.delete()


# --- Firestore ----------------------------------------------------------------------------------------


class FirestoreAccounts:
    def __init__(self, db: firestore.Client, writes: Writes | None = None) -> None:
        self.db = db
        self.writes = writes or Writes(db)

    def _ref(self, account_id: str) -> firestore.DocumentReference:
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            raise NotFound("not-found", "No such account.")  # not an id we issue, nor a valid document name
        return self.db.collection(ACCOUNTS).document(account_id)

    def _email_ref(self, email: str) -> firestore.DocumentReference:
        return self.db.collection(ACCOUNT_EMAILS).document(email_key(email))

    def get(self, account_id: str) -> Account | None:
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            return None  # not an id we issue (and no valid document path): no such account
        snap = self._ref(account_id).get()
        return Account.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None

    def status(self, account_id: str) -> str | None:
        snap = self._ref(account_id).get(field_paths=["status"])
        return (snap.to_dict() or {}).get("status", "active") if snap.exists else None

    def find_by_email(self, email: str) -> Account | None:
        index = self._email_ref(email).get()
        if not index.exists:
            return None
        return self.get((index.to_dict() or {})["account_id"])

    def create(self, account: Account) -> None:
        """The account and its email index in one transaction; Conflict when the address is taken."""
        email_ref, ref = self._email_ref(account.email), self._ref(account.id)

        @firestore.transactional
        def create(tx: firestore.Transaction) -> None:
            if email_ref.get(transaction=tx).exists:
                raise Conflict("email-taken", "This address already has an account.")
            tx.create(email_ref, {"account_id": account.id, "created_at": account.created_at})
            tx.create(ref, account.to_doc())

        create(self.db.transaction())

    def update(self, account_id: str, changes: dict[str, Any]) -> None:
        self.writes.update(self._ref(account_id), changes)

    def change_email(self, account_id: str, old_email: str, new_email: str, changes: dict[str, Any]) -> None:
        old_ref, new_ref, ref = self._email_ref(old_email), self._email_ref(new_email), self._ref(account_id)

        @firestore.transactional
        def swap(tx: firestore.Transaction) -> None:
            taken = new_ref.get(transaction=tx)
            if taken.exists and (taken.to_dict() or {}).get("account_id") != account_id:
                raise Conflict("email-taken", "This address is used by another account.")
            tx.set(new_ref, {"account_id": account_id, "created_at": changes.get("updated_at")})
            if email_key(old_email) != email_key(new_email):
                tx.delete(old_ref)
            tx.update(ref, {**changes, "email": new_email})

        swap(self.db.transaction())

    def link_google(self, subject: str, fresh: Account, link: Callable[[Account], dict[str, Any]]) -> tuple[str, str]:
        """Find or create the account of a Google subject (keyed on the subject, never the email).

        Returns (outcome, account_id): "known", "created", or the outcome `link` names for an existing
        account found by address (`link` returns the changes to apply, with "outcome" among them).
        """
        subject_ref = self.db.collection(GOOGLE_IDENTITIES).document(subject)
        email_ref = self._email_ref(fresh.email)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> tuple[str, str]:
            linked = subject_ref.get(transaction=tx)
            if linked.exists:
                return "known", (linked.to_dict() or {})["account_id"]
            index = email_ref.get(transaction=tx)
            if not index.exists:
                tx.create(email_ref, {"account_id": fresh.id, "created_at": fresh.created_at})
                tx.create(self._ref(fresh.id), fresh.to_doc())
                tx.create(subject_ref, {"account_id": fresh.id, "created_at": fresh.created_at})
                return "created", fresh.id
            account_id = (index.to_dict() or {})["account_id"]
            snap = self._ref(account_id).get(transaction=tx)
            changes = link(Account.from_doc(snap.id, snap.to_dict() or {}))
            outcome = changes.pop("outcome")
            tx.update(snap.reference, changes)
            tx.create(subject_ref, {"account_id": account_id, "created_at": fresh.created_at})
            return outcome, account_id

        return run(self.db.transaction())

    def claim_totp_step(self, account_id: str, step: int) -> bool:
        ref = self._ref(account_id)

        @firestore.transactional
        def claim(tx: firestore.Transaction) -> bool:
            last = int((ref.get(transaction=tx).to_dict() or {}).get("totp_last_step") or 0)
            if step <= last:
                return False
            tx.update(ref, {"totp_last_step": step})
            return True

        return claim(self.db.transaction())

    def spend_recovery_code(self, account_id: str, digest: str) -> bool:
        ref = self._ref(account_id)

        @firestore.transactional
        def spend(tx: firestore.Transaction) -> bool:
            codes = list((ref.get(transaction=tx).to_dict() or {}).get("recovery_codes") or [])
            if digest not in codes:
                return False
            codes.remove(digest)
            tx.update(ref, {"recovery_codes": codes})
            return True

        return spend(self.db.transaction())

    def with_role(self, role: str) -> list[Account]:
        docs = self.db.collection(ACCOUNTS).where(filter=FieldFilter("roles", "array_contains", role)).stream()
        return [Account.from_doc(d.id, d.to_dict() or {}) for d in docs]

    def change_roles(
        self, account_id: str, wanted: Callable[[list[str]], list[str]], guard: str, now: datetime
    ) -> tuple[list[str], list[str]]:
        """Set the roles `wanted(before)` in one transaction; never leaves no account holding `guard`.

        Returns (before, after); raises NotFound, or Conflict("last-admin") when the change would
        withdraw `guard` (the admin role) from its last holder (two such changes at once cannot both pass).
        """
        ref = self._ref(account_id)
        holders = self.db.collection(ACCOUNTS).where(filter=FieldFilter("roles", "array_contains", guard))

        @firestore.transactional
        def run(tx: firestore.Transaction) -> tuple[list[str], list[str]]:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound("not-found", "No such account.")
            before = sorted((snap.to_dict() or {}).get("roles") or [])
            after = sorted(wanted(before))
            if guard in before and guard not in after and len(list(tx.get(holders))) < 2:
                raise Conflict("last-admin", "This is the last admin: grant the role to someone else first.")
            tx.update(ref, {"roles": after, "updated_at": now})
            return before, after

        return run(self.db.transaction())

    def transition(self, account_id: str, decide: Callable[[Account], dict[str, Any] | None]) -> tuple[Account, bool]:
        """Apply `decide(account)`'s changes (None: none) in one transaction: a status change seen once.

        Returns (the account after, whether it changed); NotFound when there is no such account.
        """
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            raise NotFound("not-found", "No such account.")
        ref = self._ref(account_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> tuple[Account, bool]:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise NotFound("not-found", "No such account.")
            data = snap.to_dict() or {}
            changes = decide(Account.from_doc(snap.id, dict(data)))
            if changes:
                tx.update(ref, changes)
                data.update(changes)
            return Account.from_doc(snap.id, data), bool(changes)

        return run(self.db.transaction())


class FirestoreSessions:
    def __init__(self, db: firestore.Client, writes: Writes | None = None) -> None:
        self.col = db.collection(SESSIONS)
        self.db = db
        self.writes = writes or Writes(db)

    def get(self, hashed: str) -> SessionRecord | None:
        snap = self.col.document(hashed).get()
        return SessionRecord.from_doc(snap.id, snap.to_dict() or {}) if snap.exists else None

    def add(self, record: SessionRecord) -> None:
        self.writes.set(self.col.document(record.token_hash), record.to_doc())

    def update(self, hashed: str, changes: dict[str, Any]) -> None:
        self.writes.update(self.col.document(hashed), changes)

    def delete(self, hashed: str) -> None:
        self.col.document(hashed).delete()

    def of_account(self, account_id: str) -> list[SessionRecord]:
        docs = self.col.where(filter=FieldFilter("account_id", "==", account_id)).stream()
        return sorted(
            (SessionRecord.from_doc(d.id, d.to_dict() or {}) for d in docs), key=lambda r: r.created_at, reverse=True
        )

    def delete_many(self, hashes: Iterable[str]) -> None:
        batch = self.db.batch()
        for hashed in hashes:
            batch.delete(self.col.document(hashed))
        batch.commit()


class FirestoreTokens:
    """Single-use link tokens (email change, password reset): stored as SHA-256 of the token."""

    def __init__(self, db: firestore.Client) -> None:
        self.db = db
        self.col = db.collection(VERIFICATION_TOKENS)

    def issue(self, account_id: str, purpose: str, expires_at: datetime, now: datetime, **data: Any) -> str:
        """A fresh token; earlier unused tokens of the same purpose stop working."""
        stale = (
            self.col.where(filter=FieldFilter("account_id", "==", account_id))
            .where(filter=FieldFilter("purpose", "==", purpose))
            .stream()
        )
        for doc in stale:
            doc.reference.delete()
        token = new_token()
        self.col.document(token_hash(token)).set(
            {"account_id": account_id, "purpose": purpose, "created_at": now, "expires_at": expires_at, **data}
        )
        return token

    def _check(self, data: dict[str, Any] | None, purposes: set[str], now: datetime) -> dict[str, Any]:
        if not data or data.get("purpose") not in purposes:
            raise link_refused()
        if data["expires_at"] <= now:
            raise InvalidToken("expired-token", "This link has expired; ask for a new one.")
        return data

    def peek(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]:
        snap = self.col.document(token_hash(token)).get() if token else None
        return self._check(snap.to_dict() if snap is not None and snap.exists else None, purposes, now)

    def consume(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]:
        """Use a token once: deleted in the same transaction that reads it."""
        if not token:
            raise link_refused()
        ref = self.col.document(token_hash(token))

        @firestore.transactional
        def take(tx: firestore.Transaction) -> dict[str, Any] | None:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                return None
            tx.delete(ref)
            return snap.to_dict() or {}

        return self._check(take(self.db.transaction()), purposes, now)

    def restore(self, token: str, data: dict[str, Any]) -> None:
        self.col.document(token_hash(token)).set(data)


class FirestorePendingSignups:
    """Sign-ups waiting for their address to be confirmed: no account exists until then (P16).

    Keyed by the hash of the link's token; several may exist for one address (each person who signs
    up gets their own link and keeps their own password); all go when the address gets an account.
    """

    def __init__(self, db: firestore.Client) -> None:
        self.db = db
        self.col = db.collection(PENDING_SIGNUPS)

    def add(self, pending: PendingSignup) -> str:
        token = new_token()
        self.col.document(token_hash(token)).set(pending.to_doc())
        return token

    def get(self, token: str, now: datetime) -> PendingSignup:
        snap = self.col.document(token_hash(token)).get() if token else None
        if snap is None or not snap.exists:
            raise link_refused()
        pending = PendingSignup.from_doc(snap.to_dict() or {})
        if pending.expires_at <= now:
            raise InvalidToken("expired-token", "This link has expired; sign up again or ask for a new link.")
        return pending

    def _of_address(self, email: str) -> list[firestore.DocumentSnapshot]:
        return list(self.col.where(filter=FieldFilter("email_key", "==", email_key(email))).stream())

    def renew(self, email: str, expires_at: datetime) -> tuple[str, PendingSignup] | None:
        """A new link for the newest pending sign-up of the address (its old link stops working)."""
        snaps = sorted(self._of_address(email), key=lambda s: (s.to_dict() or {}).get("created_at"))
        if not snaps:
            return None
        newest = snaps[-1]
        pending = PendingSignup.from_doc(newest.to_dict() or {})
        pending.expires_at = expires_at
        token = new_token()
        batch = self.db.batch()
        batch.delete(newest.reference)
        batch.set(self.col.document(token_hash(token)), pending.to_doc())
        batch.commit()
        return token, pending

    def clear_address(self, email: str) -> None:
        snaps = self._of_address(email)
        if snaps:
            batch = self.db.batch()
            for snap in snaps:
                batch.delete(snap.reference)
            batch.commit()


class FirestoreThrottle:
    """Attempt reservations (P22): check and count atomically, before any password is judged.

    Optimistic concurrency: the keys' records are read, the new states written in one batch whose
    every write is conditioned on the record being unchanged since that read (its update time, or
    its absence). Two attempts racing on a key cannot both commit on the same state: the loser reads
    again. So each attempt judged was counted first, and the count never overshoots; uncontended, it
    costs one read and one commit.
    """

    RETRIES = 4

    def __init__(self, db: firestore.Client, writes: Writes | None = None) -> None:
        self.db = db
        self.col = db.collection(SIGNIN_THROTTLE)
        self.writes = writes or Writes(db)

    def reserve(self, keys: list[str], now: datetime) -> bool:
        """Count one attempt on every key, or raise Throttled while one is locked.

        Returns whether this attempt locked a key. When the count cannot be recorded (contention that
        outlasts the retries, an unavailable database), raises Throttled too: no attempt is judged
        that was not counted first.
        """
        refs = [self.col.document(k) for k in keys]
        for _ in range(self.RETRIES):
            try:
                snaps = {s.id: s for s in self.db.get_all(refs)}
                states = {r.id: ThrottleState.from_doc(_data(snaps.get(r.id))) for r in refs}
                waits = [w for w in (retry_after(s, now) for s in states.values()) if w]
                if waits:
                    raise Throttled(max(waits), "Too many failed attempts; wait before trying again.")
                batch, locked = self.db.batch(), False
                for ref in refs:
                    state, did_lock = reserve_attempt(states[ref.id], now)
                    snap = snaps.get(ref.id)
                    if snap is not None and snap.exists:
                        unchanged = self.db.write_option(last_update_time=snap.update_time)
                        batch.update(ref, state.to_doc(), option=unchanged)
                    else:
                        batch.create(ref, state.to_doc())  # fails if another attempt created it first
                    locked = locked or did_lock
                batch.commit()
                return locked
            except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound, gexc.Aborted, gexc.Conflict):
                continue  # another attempt wrote a key since the read: read again
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
                log.warning("throttle reservation not recorded", error=type(exc).__name__)
                break
        raise Throttled(2, "Too many simultaneous attempts; try again in a moment.")

    def release(self, keys: list[str], at: datetime, clear: list[str]) -> None:
        """After a success: the keys in `clear` start afresh, the others forget this one attempt.

        Blind writes, no read, so they join the caller's unit of work (a sign-in commits them with its
        session): a delete, and a merge that removes the attempt's own time (ArrayRemove). The merge
        never fails on a record TTL removed meanwhile; its `expire_at`, an hour on, is never earlier than
        the record's own horizon (an hour after its last failure, or its lock, at most an hour long).
        A lock this attempt set stays: it errs on the safe side.
        """
        with self.writes.unit_of_work():
            for key in keys:
                ref = self.col.document(key)
                if key in clear:
                    self.writes.delete(ref)
                else:
                    self.writes.merge(ref, {"failures": firestore.ArrayRemove([at]), "expire_at": at + HOUR})


class FirestoreSecurityEvents:
    def __init__(self, db: firestore.Client, retention_days: int, writes: Writes | None = None) -> None:
        self.col = db.collection(SECURITY_EVENTS)
        self.retention = timedelta(days=retention_days)
        self.writes = writes or Writes(db)

    def add(
        self, account_id: str, kind: str, now: datetime, ip: str = "", user_agent: str = "", **details: Any
    ) -> None:
        self.writes.set(
            self.col.document(),
            {
                "account_id": account_id,
                "type": kind,
                "at": now,
                "ip": ip,
                "user_agent": user_agent[:512],
                "details": details,
                "expire_at": now + self.retention,
            },
        )
        log.info("security event", account_id=account_id, event=kind)

    def of_account(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        docs = (
            self.col.where(filter=FieldFilter("account_id", "==", account_id))
            .order_by("at", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .stream()
        )
        return [d.to_dict() or {} for d in docs]


def firestore_stores(db: firestore.Client, security_event_retention_days: int) -> IdentityStores:
    writes = Writes(db)  # one per set of stores: their writes share the thread's unit of work
    return IdentityStores(
        accounts=FirestoreAccounts(db, writes),
        sessions=FirestoreSessions(db, writes),
        tokens=FirestoreTokens(db),
        pending=FirestorePendingSignups(db),
        throttle=FirestoreThrottle(db, writes),
        events=FirestoreSecurityEvents(db, security_event_retention_days, writes),
        unit_of_work=writes.unit_of_work,
    )
