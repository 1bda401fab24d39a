"""The identity use cases on the Firestore emulator with a controlled clock: expiries and timeouts.

Adapters are swapped through the composition root (`build_identity_service`): a recording mailer,
a recording queue in place of the `auth-requests` topic (the test plays the auth worker), and a
clock the test moves, so the one-hour links, the 10-minute step-up window and the 30-minute /
12-hour session limits are proven without waiting (P16, P21, P22, P25).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from shared.adapters.mail import Mail
from shared.bootstrap import build_identity_service
from shared.config import Settings
from shared.errors import (
    InvalidCredentials,
    InvalidToken,
    NotAuthenticated,
    ReauthenticationRequired,
    Throttled,
)
from shared.identity.reauth import Proof
from shared.identity.service import IdentityService
from tests.support import new_email, new_ip, new_password

UA = "pytest"


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    def token(self, to: str) -> str:
        """The token of the newest mail to `to` (its link carries it in the fragment)."""
        mail = [m for m in self.sent if m.to == to][-1]
        assert "?token=" not in mail.text
        found = re.search(r"#token=([\w\-%]+)", mail.text)
        assert found, mail.text
        return unquote(found.group(1))


class RecordingQueue:
    """The `auth-requests` topic: the test delivers what was queued, as the auth worker would."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.queued.append((kind, payload))

    def deliver(self, service: IdentityService) -> None:
        while self.queued:
            kind, payload = self.queued.pop(0)
            service.handle_request(kind, payload)


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
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
def settings(stack: Any) -> Settings:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {**os.environ, **stack.env, "BCRYPT_COST": "4", "PASSWORD_PEPPER": key, "TOTP_ENCRYPTION_KEY": key}
    return Settings.from_env(env)


@pytest.fixture
def service(settings: Settings, clock: Clock, mailer: RecordingMailer, queue: RecordingQueue) -> IdentityService:
    return build_identity_service(settings, mailer=mailer, clock=clock, enqueue=queue)


def verified_account(service: IdentityService, mailer: RecordingMailer) -> tuple[str, str]:
    email, password = new_email(), new_password()
    service.registration.signup(email, password, "Ada", "Lovelace", new_ip(), UA)
    service.registration.confirm(mailer.token(email), password, new_ip(), UA)
    return email, password


@pytest.mark.policy("P16")
def test_signup_creates_no_account_until_confirmed_with_its_password(
    service: IdentityService, mailer: RecordingMailer
) -> None:
    email, password = new_email(), new_password()
    service.registration.signup(email, password, "Ada", "Lovelace", new_ip(), UA)
    assert service.ctx.stores.accounts.find_by_email(email) is None
    with pytest.raises(InvalidCredentials) as no_account:
        service.signin.signin(email, password, new_ip(), UA)
    assert no_account.value.code == "invalid-credentials"
    token = mailer.token(email)
    with pytest.raises(InvalidCredentials) as mismatch:
        service.registration.confirm(token, new_password(), new_ip(), UA)
    assert mismatch.value.code == "signup-password-mismatch"
    assert service.ctx.stores.accounts.find_by_email(email) is None
    account = service.registration.confirm(token, password, new_ip(), UA)
    assert account.email == email and account.email_verified
    with pytest.raises(InvalidToken) as used:
        service.registration.confirm(token, password, new_ip(), UA)
    assert used.value.code == "invalid-token", "a confirmation link works once"
    service.signin.signin(email, password, new_ip(), UA)


@pytest.mark.policy("P16")
def test_verification_link_expires_after_an_hour(
    service: IdentityService, mailer: RecordingMailer, clock: Clock, queue: RecordingQueue
) -> None:
    email, password = new_email(), new_password()
    service.registration.signup(email, password, "Ada", "Lovelace", new_ip(), UA)
    token = mailer.token(email)
    clock.advance(minutes=61)
    with pytest.raises(InvalidToken) as expired:
        service.registration.confirm(token, password, new_ip(), UA)
    assert expired.value.code == "expired-token"
    service.registration.resend(email)
    assert queue.queued == [("verification_resend", {"email": email})]
    queue.deliver(service)
    fresh = mailer.token(email)
    assert fresh != token
    service.registration.confirm(fresh, password, new_ip(), UA)
    service.signin.signin(email, password, new_ip(), UA)


@pytest.mark.policy("P22")
def test_resend_and_reset_requests_do_nothing_for_unknown_addresses(
    service: IdentityService, mailer: RecordingMailer, queue: RecordingQueue
) -> None:
    nobody = new_email()
    service.registration.resend(nobody)
    service.credentials.request_reset(nobody)
    assert len(queue.queued) == 2 and not mailer.sent, "the answer does the same work: the worker looks up"
    queue.deliver(service)
    assert not mailer.sent


@pytest.mark.policy("P25")
def test_reset_link_expires_after_an_hour(
    service: IdentityService, mailer: RecordingMailer, clock: Clock, queue: RecordingQueue
) -> None:
    email, _ = verified_account(service, mailer)
    service.credentials.request_reset(email)
    queue.deliver(service)
    token = mailer.token(email)
    clock.advance(minutes=60, seconds=1)
    with pytest.raises(InvalidToken) as expired:
        service.credentials.reset_password(token, new_password(), new_ip(), UA)
    assert expired.value.code == "expired-token"


@pytest.mark.policy("P25")
def test_reset_link_works_once_and_ends_every_session(
    service: IdentityService, mailer: RecordingMailer, clock: Clock, queue: RecordingQueue
) -> None:
    email, password = verified_account(service, mailer)
    session, _, _ = service.signin.signin(email, password, new_ip(), UA)
    service.credentials.request_reset(email)
    queue.deliver(service)
    token = mailer.token(email)
    clock.advance(minutes=59)
    new = new_password()
    service.credentials.reset_password(token, new, new_ip(), UA)
    with pytest.raises(InvalidToken) as used:
        service.credentials.reset_password(token, new_password(), new_ip(), UA)
    assert used.value.code == "invalid-token"
    with pytest.raises(NotAuthenticated):
        service.sessions.authenticate(session)
    with pytest.raises(InvalidCredentials):
        service.signin.signin(email, password, new_ip(), UA)
    service.signin.signin(email, new, new_ip(), UA)


@pytest.mark.policy("P15", "P25")
def test_email_change_link_expires_after_an_hour(
    service: IdentityService, mailer: RecordingMailer, clock: Clock
) -> None:
    email, password = verified_account(service, mailer)
    token, _, _ = service.signin.signin(email, password, new_ip(), UA)
    principal = service.sessions.authenticate(token)
    moved = new_email("moved")
    with pytest.raises(ReauthenticationRequired) as bare:
        service.profile.update(principal, {"email": moved}, Proof(), new_ip(), UA)
    assert bare.value.code == "reauthentication-required"
    service.profile.update(principal, {"email": moved}, Proof(current_password=password), new_ip(), UA)
    link = mailer.token(moved)
    clock.advance(minutes=61)
    with pytest.raises(InvalidToken) as expired:
        service.registration.confirm_email_change(link)
    assert expired.value.code == "expired-token"
    assert service.ctx.stores.accounts.find_by_email(email) is not None
    assert service.ctx.stores.accounts.find_by_email(moved) is None


@pytest.mark.policy("P25")
def test_step_up_counts_for_ten_minutes_of_the_same_session(
    service: IdentityService, mailer: RecordingMailer, clock: Clock
) -> None:
    email, password = verified_account(service, mailer)
    ip = new_ip()
    token, _, _ = service.signin.signin(email, password, ip, UA)
    other, _, _ = service.signin.signin(email, password, ip, UA)
    with pytest.raises(ReauthenticationRequired) as required:
        service.step_up.require(service.sessions.authenticate(token), Proof(), ip, UA)
    assert required.value.code == "reauthentication-required"
    with pytest.raises(ReauthenticationRequired) as wrong:
        service.step_up.require(service.sessions.authenticate(token), Proof(current_password=new_password()), ip, UA)
    assert wrong.value.code == "invalid-current-password"
    assert service.step_up.require(service.sessions.authenticate(token), Proof(current_password=password), ip, UA)
    clock.advance(minutes=9, seconds=59)
    assert service.step_up.require(service.sessions.authenticate(token), Proof(), ip, UA) == "recent"
    with pytest.raises(ReauthenticationRequired):  # another session of the same account gained nothing
        service.step_up.require(service.sessions.authenticate(other), Proof(), ip, UA)
    clock.now = clock.now + timedelta(seconds=2)
    with pytest.raises(ReauthenticationRequired):
        service.step_up.require(service.sessions.authenticate(token), Proof(), ip, UA)


@pytest.mark.policy("P21")
def test_sessions_end_after_30_idle_minutes(service: IdentityService, mailer: RecordingMailer, clock: Clock) -> None:
    email, password = verified_account(service, mailer)
    token, record, _ = service.signin.signin(email, password, new_ip(), UA)
    clock.advance(minutes=29)
    assert service.sessions.authenticate(token).session.id == record.id  # activity moves last_seen forward
    clock.advance(minutes=29)
    assert service.sessions.authenticate(token).session.last_seen_at == clock.now
    clock.advance(minutes=31)
    with pytest.raises(NotAuthenticated) as expired:
        service.sessions.authenticate(token)
    assert expired.value.code == "session-expired"
    with pytest.raises(NotAuthenticated) as gone:
        service.sessions.authenticate(token)  # and the record is gone
    assert gone.value.code == "unauthenticated"


@pytest.mark.policy("P21")
def test_sessions_end_after_12_hours_however_active(
    service: IdentityService, mailer: RecordingMailer, clock: Clock
) -> None:
    email, password = verified_account(service, mailer)
    token, _, _ = service.signin.signin(email, password, new_ip(), UA)
    for _ in range(24):
        clock.advance(minutes=29, seconds=59)
        if clock.now >= datetime(2026, 11, 30, 21, 0, tzinfo=UTC):
            break
        service.sessions.authenticate(token)
    clock.now = datetime(2026, 11, 30, 21, 0, 1, tzinfo=UTC)
    with pytest.raises(NotAuthenticated) as expired:
        service.sessions.authenticate(token)
    assert expired.value.code == "session-expired"


@pytest.mark.policy("P22")
def test_lock_lifts_after_retry_after(service: IdentityService, mailer: RecordingMailer, clock: Clock) -> None:
    email, password = verified_account(service, mailer)
    ip = new_ip()
    for _ in range(10):
        with pytest.raises(InvalidCredentials):
            service.signin.signin(email, new_password(), ip, UA)
    with pytest.raises(Throttled) as locked:
        service.signin.signin(email, password, ip, UA)
    assert locked.value.code == "too-many-attempts"
    assert 1 <= locked.value.retry_after <= 60
    clock.advance(seconds=locked.value.retry_after)
    service.signin.signin(email, password, ip, UA)


@pytest.mark.policy("P22", "P25")
def test_wrong_current_passwords_count_on_the_sign_in_throttle(
    service: IdentityService, mailer: RecordingMailer
) -> None:
    email, password = verified_account(service, mailer)
    ip = new_ip()
    token, _, _ = service.signin.signin(email, password, ip, UA)
    refused = []
    for _ in range(15):
        try:
            service.credentials.change_password(
                service.sessions.authenticate(token), Proof(current_password=new_password()), new_password(), ip, UA
            )
        except (ReauthenticationRequired, Throttled) as exc:
            refused.append(type(exc))
    assert refused[:10] == [ReauthenticationRequired] * 10
    assert refused[10:] == [Throttled] * 5
    with pytest.raises(Throttled):  # the lock is the account's: its sign-in is locked too
        service.signin.signin(email, password, new_ip(), UA)


@pytest.mark.policy("P1")
def test_hash_is_upgraded_when_the_cost_rises(
    service: IdentityService, mailer: RecordingMailer, clock: Clock, queue: RecordingQueue
) -> None:
    email, password = verified_account(service, mailer)
    stronger = build_identity_service(
        dataclasses.replace(service.ctx.settings, bcrypt_cost=5), mailer=mailer, clock=clock, enqueue=queue
    )
    stronger.signin.signin(email, password, new_ip(), UA)
    account = stronger.ctx.stores.accounts.find_by_email(email)
    assert account is not None and account.password_hash is not None
    assert account.password_hash.startswith("$2b$05$")
