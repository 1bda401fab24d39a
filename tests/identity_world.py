"""An identity service wired over the in-memory stores (shared/identity/memory.py), for use-case tests.

`IdentityWorld` records what leaves the service (mails, queued requests, consent records and
resyncs), gives it a clock the test moves and a Google verifier the test feeds, and makes accounts
the way a person does (sign up, confirm with the password, sign in). Tests of other use cases that
build on identity (cancellation) extend it.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.google_identity import GoogleIdentity
from shared.adapters.mail import Mail
from shared.bootstrap import build_identity_service
from shared.config import Settings
from shared.errors import InvalidCredentials
from shared.identity.memory import MemorySecurityEvents, memory_stores
from shared.identity.service import IdentityService
from shared.identity.stores import IdentityStores

KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
PASSWORD = "correct horse battery staple 1"
IP, UA = "198.51.100.1", "pytest"


class Mails:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    def to(self, address: str, subject_has: str = "") -> list[Mail]:
        return [m for m in self.sent if m.to == address and subject_has.lower() in m.subject.lower()]

    def token(self, address: str, subject_has: str = "") -> str:
        text = self.to(address, subject_has)[-1].text
        found = re.search(r"#token=([\w\-%]+)", text)
        assert found, text
        return found.group(1)


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Google:
    def __init__(self) -> None:
        self.identities: dict[str, GoogleIdentity] = {}

    def verify(self, id_token: str) -> GoogleIdentity:
        if id_token not in self.identities:
            raise InvalidCredentials("invalid-google-token", "unknown token")
        return self.identities[id_token]


class IdentityWorld:
    """A wired identity service over memory stores, with a queue the test drains like the auth worker."""

    def __init__(self, project: str = "demo-identity", now: datetime | None = None) -> None:
        self.mails, self.clock, self.google = Mails(), Clock(now), Google()
        self.stores: IdentityStores = memory_stores()
        self.queue: list[tuple[str, dict[str, Any]]] = []
        self.consents: list[tuple[str, bool, str]] = []
        self.resyncs: list[str] = []
        env = {
            "GOOGLE_CLOUD_PROJECT": project,
            "APP_ENV": "local",
            "BCRYPT_COST": "4",
            "PASSWORD_PEPPER": KEY,
            "TOTP_ENCRYPTION_KEY": KEY,
        }
        self.settings = Settings.from_env(env)
        self.identity: IdentityService = build_identity_service(
            self.settings,
            stores=self.stores,
            mailer=self.mails,
            clock=self.clock,
            google=self.google,
            enqueue=lambda kind, payload: self.queue.append((kind, payload)),
            record_consent=lambda account_id, marketing, source: self.consents.append((account_id, marketing, source)),
            resync_consent=self.resyncs.append,
        )
        self.service: Any = self.identity  # the use case under test (tests of other use cases replace it)

    def drain(self) -> None:
        while self.queue:
            kind, payload = self.queue.pop(0)
            self.identity.handle_request(kind, payload)

    def signup(self, email: str, password: str = PASSWORD, ip: str = IP) -> None:
        self.identity.registration.signup(email, password, "Ada", "Lovelace", ip, UA)

    def account(self, email: str = "ada@example.com", password: str = PASSWORD) -> tuple[str, Any]:
        """Sign up, confirm with the password, sign in: (session token, principal)."""
        self.signup(email, password)
        self.identity.registration.confirm(self.mails.token(email, "confirm your email"), password, IP, UA)
        token, _, _ = self.identity.signin.signin(email, password, IP, UA)
        return token, self.identity.authenticate(token)

    def events(self, account_id: str) -> list[str]:
        events = self.stores.events
        assert isinstance(events, MemorySecurityEvents)
        return events.kinds(account_id)
