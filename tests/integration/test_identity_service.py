"""The identity service on the Firestore emulator with a controlled clock: expiries and timeouts.

Adapters are swapped through the composition root (`build_identity_service`): a recording mailer
and a clock the test moves, so the one-hour links and the 30-minute / 12-hour session limits are
proven without waiting (P16, P21, P25).
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.mail import Mail
from shared.bootstrap import build_identity_service
from shared.config import Settings
from shared.http.problems import Problem
from shared.identity.service import IdentityService
from tests.support import new_email, new_ip, new_password


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    def token(self, to: str) -> str:
        mail = [m for m in self.sent if m.to == to][-1]
        return re.search(r"token=([\w\-%]+)", mail.text).group(1)  # type: ignore[union-attr]


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
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def service(stack: Any, clock: Clock, mailer: RecordingMailer) -> IdentityService:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {**os.environ, **stack.env, "BCRYPT_COST": "4", "PASSWORD_PEPPER": key, "TOTP_ENCRYPTION_KEY": key}
    return build_identity_service(Settings.from_env(env), mailer=mailer, clock=clock)


def verified_account(service: IdentityService, mailer: RecordingMailer) -> tuple[str, str]:
    email, password = new_email(), new_password()
    service.signup(email, password, "Ada", "Lovelace", new_ip(), "pytest")
    service.verify_email(mailer.token(email))
    return email, password


@pytest.mark.policy("P16")
def test_verification_link_expires_after_an_hour(
    service: IdentityService, mailer: RecordingMailer, clock: Clock
) -> None:
    email, password = new_email(), new_password()
    service.signup(email, password, "Ada", "Lovelace", new_ip(), "pytest")
    token = mailer.token(email)
    clock.advance(minutes=61)
    with pytest.raises(Problem) as expired:
        service.verify_email(token)
    assert expired.value.slug == "expired-token"
    service.resend_verification(email)
    service.verify_email(mailer.token(email))


@pytest.mark.policy("P25")
def test_reset_link_expires_after_an_hour(service: IdentityService, mailer: RecordingMailer, clock: Clock) -> None:
    email, _ = verified_account(service, mailer)
    service.forgot_password(email)
    token = mailer.token(email)
    clock.advance(minutes=60, seconds=1)
    with pytest.raises(Problem) as expired:
        service.reset_password(token, new_password(), new_ip(), "pytest")
    assert expired.value.slug == "expired-token"


@pytest.mark.policy("P21")
def test_sessions_end_after_30_idle_minutes(service: IdentityService, mailer: RecordingMailer, clock: Clock) -> None:
    email, password = verified_account(service, mailer)
    token, record, _ = service.signin(email, password, new_ip(), "pytest")
    clock.advance(minutes=29)
    assert service.authenticate(token).session.id == record.id  # activity moves last_seen forward
    clock.advance(minutes=29)
    assert service.authenticate(token).session.last_seen_at == clock.now
    clock.advance(minutes=31)
    with pytest.raises(Problem) as expired:
        service.authenticate(token)
    assert expired.value.slug == "session-expired"
    with pytest.raises(Problem):
        service.authenticate(token)  # and the record is gone


@pytest.mark.policy("P21")
def test_sessions_end_after_12_hours_however_active(
    service: IdentityService, mailer: RecordingMailer, clock: Clock
) -> None:
    email, password = verified_account(service, mailer)
    token, _, _ = service.signin(email, password, new_ip(), "pytest")
    for _ in range(24):
        clock.advance(minutes=29, seconds=59)
        if clock.now >= datetime(2026, 11, 30, 21, 0, tzinfo=UTC):
            break
        service.authenticate(token)
    clock.now = datetime(2026, 11, 30, 21, 0, 1, tzinfo=UTC)
    with pytest.raises(Problem) as expired:
        service.authenticate(token)
    assert expired.value.slug == "session-expired"


@pytest.mark.policy("P22")
def test_lock_lifts_after_retry_after(service: IdentityService, mailer: RecordingMailer, clock: Clock) -> None:
    email, password = verified_account(service, mailer)
    ip = new_ip()
    for _ in range(10):
        with pytest.raises(Problem):
            service.signin(email, new_password(), ip, "pytest")
    with pytest.raises(Problem) as locked:
        service.signin(email, password, ip, "pytest")
    assert locked.value.status == 429
    clock.advance(seconds=int(locked.value.headers["Retry-After"]))
    service.signin(email, password, ip, "pytest")


@pytest.mark.policy("P1")
def test_hash_is_upgraded_when_the_cost_rises(stack: Any, service: IdentityService, mailer: RecordingMailer) -> None:
    email, password = verified_account(service, mailer)
    stronger = build_identity_service(
        Settings(**{**service.settings.__dict__, "bcrypt_cost": 5}), mailer=mailer, clock=service.clock
    )
    stronger.signin(email, password, new_ip(), "pytest")
    account = stronger.find_by_email(email)
    assert account is not None and account.password_hash is not None
    assert account.password_hash.startswith("$2b$05$")
