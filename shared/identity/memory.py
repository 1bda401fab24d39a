"""In-memory twins of the identity stores (`shared/identity/stores.py`): same methods, same refusals.

For fast tests of the use cases: every method takes one lock, which gives the atomicity a
Firestore transaction gives. Documents are copied in and out, as a database would.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.errors import Conflict, InvalidToken, NotFound, Throttled
from shared.identity.model import Account, PendingSignup, SessionRecord
from shared.identity.stores import IdentityStores, link_refused
from shared.identity.throttle import ThrottleState, reserve_attempt, retry_after, undo_attempt
from shared.identity.tokens import email_key, new_token, token_hash


class _Locked:
    def __init__(self) -> None:
        self.lock = threading.RLock()


class MemoryAccounts(_Locked):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, str] = {}
        self.google: dict[str, str] = {}

    def get(self, account_id: str) -> Account | None:
        with self.lock:
            doc = self.docs.get(account_id)
            return Account.from_doc(account_id, copy.deepcopy(doc)) if doc is not None else None

    def status(self, account_id: str) -> str | None:
        account = self.get(account_id)
        return account.status if account else None

    def find_by_email(self, email: str) -> Account | None:
        with self.lock:
            account_id = self.emails.get(email_key(email))
        return self.get(account_id) if account_id else None

    def create(self, account: Account) -> None:
        with self.lock:
            if email_key(account.email) in self.emails:
                raise Conflict("email-taken", "This address already has an account.")
            self.emails[email_key(account.email)] = account.id
            self.docs[account.id] = copy.deepcopy(account.to_doc())

    def update(self, account_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            if account_id not in self.docs:
                raise KeyError(account_id)
            self.docs[account_id].update(copy.deepcopy(changes))

    def change_email(self, account_id: str, old_email: str, new_email: str, changes: dict[str, Any]) -> None:
        with self.lock:
            owner = self.emails.get(email_key(new_email))
            if owner is not None and owner != account_id:
                raise Conflict("email-taken", "This address is used by another account.")
            self.emails.pop(email_key(old_email), None)
            self.emails[email_key(new_email)] = account_id
            self.docs[account_id].update({**changes, "email": new_email})

    def link_google(self, subject: str, fresh: Account, link: Callable[[Account], dict[str, Any]]) -> tuple[str, str]:
        with self.lock:
            if subject in self.google:
                return "known", self.google[subject]
            account_id = self.emails.get(email_key(fresh.email))
            if account_id is None:
                self.create(fresh)
                self.google[subject] = fresh.id
                return "created", fresh.id
            changes = link(self.get(account_id))  # type: ignore[arg-type]
            outcome = changes.pop("outcome")
            self.docs[account_id].update(changes)
            self.google[subject] = account_id
            return outcome, account_id

    def claim_totp_step(self, account_id: str, step: int) -> bool:
        with self.lock:
            if step <= int(self.docs[account_id].get("totp_last_step") or 0):
                return False
            self.docs[account_id]["totp_last_step"] = step
            return True

    def spend_recovery_code(self, account_id: str, digest: str) -> bool:
        with self.lock:
            codes = self.docs[account_id].get("recovery_codes") or []
            if digest not in codes:
                return False
            codes.remove(digest)
            return True

    def change_roles(
        self, account_id: str, wanted: Callable[[list[str]], list[str]], guard: str, now: datetime
    ) -> tuple[list[str], list[str]]:
        with self.lock:
            if account_id not in self.docs:
                raise NotFound("not-found", "No such account.")
            before = sorted(self.docs[account_id].get("roles") or [])
            after = sorted(wanted(before))
            holders = [d for d in self.docs.values() if guard in (d.get("roles") or [])]
            if guard in before and guard not in after and len(holders) < 2:
                raise Conflict("last-admin", "This is the last admin: grant the role to someone else first.")
            self.docs[account_id].update({"roles": after, "updated_at": now})
            return before, after

    def with_role(self, role: str) -> list[Account]:
        with self.lock:
            ids = [i for i, d in self.docs.items() if role in (d.get("roles") or [])]
        return [a for a in (self.get(i) for i in ids) if a]

    def transition(self, account_id: str, decide: Callable[[Account], dict[str, Any] | None]) -> tuple[Account, bool]:
        with self.lock:
            if account_id not in self.docs:
                raise NotFound("not-found", "No such account.")
            changes = decide(Account.from_doc(account_id, copy.deepcopy(self.docs[account_id])))
            if changes:
                self.docs[account_id].update(copy.deepcopy(changes))
            return Account.from_doc(account_id, copy.deepcopy(self.docs[account_id])), bool(changes)


class MemorySessions(_Locked):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}

    def get(self, hashed: str) -> SessionRecord | None:
        with self.lock:
            doc = self.docs.get(hashed)
            return SessionRecord.from_doc(hashed, copy.deepcopy(doc)) if doc else None

    def add(self, record: SessionRecord) -> None:
        with self.lock:
            self.docs[record.token_hash] = record.to_doc()

    def update(self, hashed: str, changes: dict[str, Any]) -> None:
        with self.lock:
            if hashed in self.docs:
                self.docs[hashed].update(changes)

    def delete(self, hashed: str) -> None:
        with self.lock:
            self.docs.pop(hashed, None)

    def of_account(self, account_id: str) -> list[SessionRecord]:
        with self.lock:
            found = [SessionRecord.from_doc(h, dict(d)) for h, d in self.docs.items() if d["account_id"] == account_id]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    def delete_many(self, hashes: Iterable[str]) -> None:
        with self.lock:
            for hashed in list(hashes):
                self.docs.pop(hashed, None)


class MemoryTokens(_Locked):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}

    def issue(self, account_id: str, purpose: str, expires_at: datetime, now: datetime, **data: Any) -> str:
        with self.lock:
            for hashed in [
                h for h, d in self.docs.items() if d["account_id"] == account_id and d["purpose"] == purpose
            ]:
                del self.docs[hashed]
            token = new_token()
            self.docs[token_hash(token)] = {
                "account_id": account_id,
                "purpose": purpose,
                "created_at": now,
                "expires_at": expires_at,
                **data,
            }
            return token

    @staticmethod
    def _check(data: dict[str, Any] | None, purposes: set[str], now: datetime) -> dict[str, Any]:
        if not data or data.get("purpose") not in purposes:
            raise link_refused()
        if data["expires_at"] <= now:
            raise InvalidToken("expired-token", "This link has expired; ask for a new one.")
        return data

    def peek(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]:
        with self.lock:
            return self._check(dict(self.docs.get(token_hash(token)) or {}) or None, purposes, now)

    def consume(self, token: str, purposes: set[str], now: datetime) -> dict[str, Any]:
        with self.lock:
            return self._check(self.docs.pop(token_hash(token), None) if token else None, purposes, now)

    def restore(self, token: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.docs[token_hash(token)] = dict(data)


class MemoryPendingSignups(_Locked):
    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, dict[str, Any]] = {}

    def add(self, pending: PendingSignup) -> str:
        with self.lock:
            token = new_token()
            self.docs[token_hash(token)] = pending.to_doc()
            return token

    def get(self, token: str, now: datetime) -> PendingSignup:
        with self.lock:
            doc = self.docs.get(token_hash(token)) if token else None
        if doc is None:
            raise link_refused()
        pending = PendingSignup.from_doc(dict(doc))
        if pending.expires_at <= now:
            raise InvalidToken("expired-token", "This link has expired; sign up again or ask for a new link.")
        return pending

    def renew(self, email: str, expires_at: datetime) -> tuple[str, PendingSignup] | None:
        with self.lock:
            mine = sorted(
                ((h, d) for h, d in self.docs.items() if d["email_key"] == email_key(email)),
                key=lambda item: item[1]["created_at"],
            )
            if not mine:
                return None
            hashed, doc = mine[-1]
            del self.docs[hashed]
            pending = PendingSignup.from_doc(dict(doc))
            pending.expires_at = expires_at
            token = new_token()
            self.docs[token_hash(token)] = pending.to_doc()
            return token, pending

    def clear_address(self, email: str) -> None:
        with self.lock:
            for hashed in [h for h, d in self.docs.items() if d["email_key"] == email_key(email)]:
                del self.docs[hashed]


class MemoryThrottle(_Locked):
    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, ThrottleState] = {}

    def reserve(self, keys: list[str], now: datetime) -> bool:
        with self.lock:
            states = {k: self.states.get(k, ThrottleState()) for k in keys}
            waits = [w for w in (retry_after(s, now) for s in states.values()) if w]
            if waits:
                raise Throttled(max(waits), "Too many failed attempts; wait before trying again.")
            locked = False
            for key in keys:
                self.states[key], did_lock = reserve_attempt(states[key], now)
                locked = locked or did_lock
            return locked

    def release(self, keys: list[str], at: datetime, clear: list[str]) -> None:
        with self.lock:
            for key in keys:
                if key in clear:
                    self.states.pop(key, None)
                elif key in self.states:
                    self.states[key] = undo_attempt(self.states[key], at)


class MemorySecurityEvents(_Locked):
    def __init__(self, retention_days: int = 395) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.retention = timedelta(days=retention_days)

    def add(
        self, account_id: str, kind: str, now: datetime, ip: str = "", user_agent: str = "", **details: Any
    ) -> None:
        with self.lock:
            self.events.append(
                {
                    "account_id": account_id,
                    "type": kind,
                    "at": now,
                    "ip": ip,
                    "user_agent": user_agent[:512],
                    "details": details,
                    "expire_at": now + self.retention,
                }
            )

    def of_account(self, account_id: str, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            mine = [e for e in self.events if e["account_id"] == account_id]
        return sorted(mine, key=lambda e: e["at"], reverse=True)[:limit]

    def kinds(self, account_id: str) -> list[str]:
        return [e["type"] for e in sorted(self.of_account(account_id, 10_000), key=lambda e: e["at"])]


def memory_stores() -> IdentityStores:
    return IdentityStores(
        accounts=MemoryAccounts(),
        sessions=MemorySessions(),
        tokens=MemoryTokens(),
        pending=MemoryPendingSignups(),
        throttle=MemoryThrottle(),
        events=MemorySecurityEvents(),
    )
