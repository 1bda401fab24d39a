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
from shared.identity.passwords import PasswordHasher
from shared.identity.stores import IdentityStores
from shared.identity.tokens import SecretBox, keyed_digest

Clock = Callable[[], datetime]
AUTH_REQUESTS_TOPIC = "auth-requests"  # the auth worker's queue (functions/auth_worker)
# Queues an address-dependent request (a reset link, a new verification link) for the auth worker,
# so the HTTP answer does the same work whatever the address (P22).
Enqueue = Callable[[str, dict[str, Any]], None]


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
