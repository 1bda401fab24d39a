"""Sessions (P21): opaque tokens stored as hashes, idle and absolute limits, listed and revoked by the holder."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.errors import Conflict, NotAuthenticated, NotFound
from shared.identity import mails
from shared.identity.context import IdentityContext
from shared.identity.model import MAX_KNOWN_DEVICES, Account, Principal, SessionRecord
from shared.identity.tokens import new_id, new_token, token_hash
from shared.retention.policy import needs_touch

TOUCH_EVERY = timedelta(minutes=1)
CANCELLED = "cancelled"


def session_expired() -> NotAuthenticated:
    return NotAuthenticated("session-expired", "The session has expired; sign in again.")


class Sessions:
    def __init__(self, ctx: IdentityContext) -> None:
        self.ctx = ctx

    def open(
        self, account: Account, method: str, ip: str, user_agent: str, authenticated_at: datetime | None = None
    ) -> tuple[str, SessionRecord, Account]:
        """A new session; the holder is told by mail when the device or network is new to the account."""
        s, now = self.ctx.settings, self.ctx.clock()
        token = new_token()
        record = SessionRecord(
            id=new_id("ses"),
            account_id=account.id,
            token_hash=token_hash(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=s.session_absolute_hours),
            ip=ip,
            user_agent=user_agent,
            method=method,
            authenticated_at=authenticated_at or now,
        )
        marks = [self.ctx.digest("ua", user_agent), self.ctx.digest("ip", ip)]
        unseen = [m for m in marks if m not in account.known_devices]
        notify = bool(unseen) and bool(account.known_devices)  # never for the very first sign-in
        account.known_devices = (account.known_devices + unseen)[-MAX_KNOWN_DEVICES:]
        use = self.ctx.purge_fields(account, now)
        for name, value in use.items():
            setattr(account, name, value)
        with self.ctx.stores.unit_of_work():  # the session, the account's devices and the events: one commit
            self.ctx.stores.sessions.add(record)
            self.ctx.stores.accounts.update(account.id, {"known_devices": account.known_devices, **use})
            self.ctx.event(account.id, "signin_succeeded", ip, user_agent, method=method)
            if notify:
                self.ctx.event(account.id, "new_device_signin", ip, user_agent)
        if notify:
            when = now.strftime("%Y-%m-%d %H:%M UTC")
            self.ctx.send(mails.new_device(account.email, account.first_name, when, ip, user_agent))
        return token, record, account

    def reactivation(self, account: Account, reactivate: bool, ip: str, user_agent: str) -> None:
        """A cancelled account signing in (P19): refused until the holder confirms; confirmed, it is active
        again and its retention clock stops (the purge is recomputed from now, as for any use)."""
        if account.status != CANCELLED:
            return
        if not reactivate:
            raise Conflict(
                "account-cancelled",
                "This account was cancelled and will be deleted on the date shown. Sign in with "
                "reactivate: true to keep it.",
                title="Account cancelled",
                purge_at=account.purge_at.isoformat() if account.purge_at else None,
            )
        now = self.ctx.clock()
        changes = {"status": "active", "cancelled_at": None, "updated_at": now, **self.ctx.purge_fields(account, now)}
        self.ctx.stores.accounts.update(account.id, changes)
        for name, value in changes.items():
            setattr(account, name, value)
        self.ctx.event(account.id, "account_reactivated", ip, user_agent)
        if self.ctx.resync_consent is not None:  # marketing stopped with the cancellation may resume (P18)
            self.ctx.resync_consent(account.id)
        self.ctx.send(mails.account_reactivated(account.email, account.first_name))

    def authenticate(self, token: str) -> Principal:
        """The principal for a bearer token, or 401. Idle and absolute timeouts are enforced here."""
        hashed = token_hash(token)
        record = self.ctx.stores.sessions.get(hashed)
        if record is None:
            raise NotAuthenticated()
        now = self.ctx.clock()
        idle = timedelta(minutes=self.ctx.settings.session_idle_minutes)
        if record.expires_at <= now or now - record.last_seen_at > idle:
            self.ctx.stores.sessions.delete(hashed)
            raise session_expired()
        account = self.ctx.stores.accounts.get(record.account_id)
        if account is None or account.status != "active":
            self.ctx.stores.sessions.delete(hashed)
            raise NotAuthenticated()
        if now - record.last_seen_at >= TOUCH_EVERY:
            self.ctx.stores.sessions.update(hashed, {"last_seen_at": now})
            record.last_seen_at = now
        if needs_touch(account.last_active_at, now):  # last use, at most once a day (P27)
            use = self.ctx.purge_fields(account, now)
            self.ctx.stores.accounts.update(account.id, use)
            for name, value in use.items():
                setattr(account, name, value)
        return Principal(account=account, session=record)

    def live(self, account_id: str) -> list[SessionRecord]:
        now = self.ctx.clock()
        idle = timedelta(minutes=self.ctx.settings.session_idle_minutes)
        return [
            r
            for r in self.ctx.stores.sessions.of_account(account_id)
            if r.expires_at > now and now - r.last_seen_at <= idle
        ]

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        return [r.public(current=r.id == principal.session.id) for r in self.live(principal.account.id)]

    def find(self, principal: Principal, session_id: str) -> SessionRecord:
        for record in self.ctx.stores.sessions.of_account(principal.account.id):
            if record.id == session_id:
                return record
        raise NotFound("not-found", "No such session on this account.")

    def revoke(self, principal: Principal, record: SessionRecord) -> None:
        self.ctx.stores.sessions.delete(record.token_hash)
        self.ctx.event(principal.account.id, "session_revoked", session_id=record.id)

    def signout(self, principal: Principal) -> None:
        self.ctx.stores.sessions.delete(principal.session.token_hash)

    def revoke_all(self, account_id: str, keep: str | None = None) -> int:
        """End every session of the account but `keep` (a session id). Returns how many ended."""
        ending = [r.token_hash for r in self.ctx.stores.sessions.of_account(account_id) if r.id != keep]
        self.ctx.stores.sessions.delete_many(ending)
        return len(ending)

    def mark_reauthenticated(self, principal: Principal) -> None:
        now = self.ctx.clock()
        self.ctx.stores.sessions.update(principal.session.token_hash, {"reauthenticated_at": now})
        principal.session.reauthenticated_at = now
