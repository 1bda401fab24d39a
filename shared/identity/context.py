"""What every identity use case works with: the stores, the settings, the hasher, the mailer, the clock.

One `IdentityContext` is built by the composition root (`shared/bootstrap.py`) and shared by the
use-case modules (registration, sign-in, Google, sessions, step-up, credentials, profile).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from shared.adapters.google_identity import GoogleVerifier
from shared.adapters.mail import Mail, Mailer
from shared.config import Settings
from shared.identity.model import Account
from shared.identity.passwords import PasswordHasher
from shared.identity.stores import IdentityStores
from shared.identity.tokens import SecretBox, keyed_digest, new_id
from shared.retention.policy import account_purge_at, warning_at

Clock = Callable[[], datetime]
AUTH_REQUESTS_TOPIC = "auth-requests"  # the auth worker's queue (functions/auth_worker)
# Queues an address-dependent request (a reset link, a new verification link) for the auth worker,
# so the HTTP answer does the same work whatever the address (P22).
Enqueue = Callable[[str, dict[str, Any]], None]
# Records a marketing consent choice (account id, marketing, source): the consent service (P18).
RecordConsent = Callable[[str, bool, str], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class IdentityContext:
    stores: IdentityStores
    settings: Settings
    hasher: PasswordHasher
    mailer: Mailer
    google: GoogleVerifier
    enqueue: Enqueue
    clock: Clock = field(default=utcnow)
    record_consent: RecordConsent | None = None
    # Passes the account's effective marketing answer on to the processors again (a reactivation).
    resync_consent: Callable[[str], None] | None = None

    @cached_property
    def box(self) -> SecretBox:
        """AES-GCM for TOTP seeds: only the use cases that read a seed need the key."""
        self.settings.require_keys("totp_encryption_key")
        return SecretBox(self.settings.totp_encryption_key)

    @property
    def link_base(self) -> str:
        """Where the links in our mails point: the web app when APP_URL is set, else our own pages."""
        return self.settings.app_url

    def digest(self, purpose: str, value: str) -> str:
        """A keyed digest (throttle keys, known devices, recovery codes): no raw value is stored."""
        return keyed_digest(self.settings.password_pepper, purpose, value)

    def event(self, account_id: str, kind: str, ip: str = "", user_agent: str = "", **details: Any) -> None:
        """Record a security event on the account (P22), kept for a limited time."""
        self.stores.events.add(account_id, kind, self.clock(), ip, user_agent, **details)

    def send(self, mail: Mail) -> None:
        self.mailer.send(mail)

    def new_account(self, email: str, first_name: str, last_name: str, **fields: Any) -> Account:
        """A verified account made now (by a confirmed sign-up or a Google sign-in), with its purge dates."""
        now = self.clock()
        account = Account(
            id=new_id("acc"),
            email=email,
            first_name=first_name,
            last_name=last_name,
            created_at=now,
            updated_at=now,
            email_verified=True,
            **fields,
        )
        for name, value in self.purge_fields(account, now).items():
            setattr(account, name, value)
        return account

    def purge_fields(self, account: Account, now: datetime, cancelled_at: datetime | None = None) -> dict[str, Any]:
        """The account's purge dates after a use at `now` (P27): 12 months after the later of use and cancellation."""
        purge_at = account_purge_at(now, cancelled_at, account.created_at, self.settings.account_retention_months)
        return {
            "last_active_at": now,
            "purge_at": purge_at,
            "purge_warning_at": warning_at(purge_at, self.settings.retention_warning_days),
        }
