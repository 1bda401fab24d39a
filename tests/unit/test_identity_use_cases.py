"""The identity use cases on in-memory stores (shared/identity/memory.py): milliseconds per test.

Each attack of issue 8 has a test here that fails against the old behaviour; the emulator and
browser tests (tests/e2e/test_auth_*.py) prove the same through the real stack.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pyotp
import pytest

from shared.adapters.google_identity import GoogleIdentity
from shared.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    ReauthenticationRequired,
    Throttled,
)
from shared.identity.reauth import Proof
from tests.identity_world import PASSWORD, IdentityWorld

OTHER = "attacker's own passphrase 99"


class World(IdentityWorld):
    pass


@pytest.fixture
def world() -> World:
    return World()


# -- sign-up and confirmation (P1, P16) ---------------------------------------------------------------
@pytest.mark.policy("P16", "P1")
def test_pre_registration_cannot_take_over_the_account(world: World) -> None:
    victim = "victim@example.com"
    world.signup(victim, OTHER, ip="203.0.113.66")  # the attacker, with their own password
    with pytest.raises(InvalidCredentials) as before:
        world.service.signin.signin(victim, OTHER, "203.0.113.66", "evil")
    world.signup(victim, PASSWORD)  # the victim, later
    with pytest.raises(InvalidCredentials) as after:
        world.service.signin.signin(victim, OTHER, "203.0.113.66", "evil")
    assert before.value.code == after.value.code == "invalid-credentials"  # no oracle
    world.signup(victim, OTHER, ip="203.0.113.66")  # the attacker signs up again: changes nothing
    attacker_link, victim_link, attacker_again = [
        re.search(r"#token=([\w\-%]+)", m.text).group(1)  # type: ignore[union-attr]
        for m in world.mails.to(victim, "confirm your email")
    ]
    # The victim clicks the attacker's links first, typing their own password: refused, nothing made.
    for link in (attacker_again, attacker_link):
        with pytest.raises(InvalidCredentials) as refused:
            world.service.registration.confirm(link, PASSWORD, "198.51.100.1", "t")
        assert refused.value.code == "signup-password-mismatch"
    assert world.stores.accounts.find_by_email(victim) is None
    world.service.registration.confirm(victim_link, PASSWORD, "198.51.100.1", "t")
    with pytest.raises(InvalidCredentials):
        world.service.signin.signin(victim, OTHER, "203.0.113.67", "evil")
    world.service.signin.signin(victim, PASSWORD, "198.51.100.1", "t")
    with pytest.raises(InvalidToken):  # every other pending sign-up died with the account's creation
        world.service.registration.confirm(attacker_link, OTHER, "203.0.113.66", "evil")


@pytest.mark.policy("P16", "P1")
def test_a_sign_up_never_changes_an_existing_account(world: World) -> None:
    world.account("ada@example.com")
    world.signup("ada@example.com", OTHER, ip="203.0.113.66")
    assert world.mails.to("ada@example.com", "someone tried")
    assert "/auth/reset-password" in world.mails.to("ada@example.com", "someone tried")[-1].text
    with pytest.raises(InvalidCredentials):
        world.service.signin.signin("ada@example.com", OTHER, "203.0.113.66", "evil")
    world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t")


@pytest.mark.policy("P16")
def test_links_carry_the_token_in_the_fragment_only(world: World) -> None:
    world.signup("ada@example.com")
    text = world.mails.to("ada@example.com", "confirm")[-1].text
    assert "/auth/verify-email#token=" in text and "?token=" not in text


@pytest.mark.policy("P16")
def test_the_link_expires_and_a_resend_voids_the_old_one(world: World) -> None:
    world.signup("ada@example.com")
    first = world.mails.token("ada@example.com", "confirm")
    world.service.registration.resend("ada@example.com")
    world.service.registration.resend("nobody@example.com")
    assert len(world.queue) == 2  # the answer's work is the same for both addresses
    world.drain()
    second = world.mails.token("ada@example.com", "confirm")
    assert second != first and not world.mails.to("nobody@example.com")
    with pytest.raises(InvalidToken):
        world.service.registration.confirm(first, PASSWORD, "198.51.100.1", "t")
    world.clock.advance(minutes=world.settings.verification_token_minutes + 1)
    with pytest.raises(InvalidToken) as expired:
        world.service.registration.confirm(second, PASSWORD, "198.51.100.1", "t")
    assert expired.value.code == "expired-token"


@pytest.mark.policy("P22", "P16")
def test_guessing_the_password_of_a_pending_sign_up_is_throttled(world: World) -> None:
    world.signup("ada@example.com")
    link = world.mails.token("ada@example.com", "confirm")
    for _ in range(10):
        with pytest.raises(InvalidCredentials):
            world.service.registration.confirm(link, "wrong guess number 123", "198.51.100.9", "t")
    with pytest.raises(Throttled):
        world.service.registration.confirm(link, PASSWORD, "198.51.100.9", "t")


# -- the throttle (P22) -------------------------------------------------------------------------------
@pytest.mark.policy("P22")
def test_parallel_guesses_judge_at_most_ten(world: World) -> None:
    world.account("ada@example.com")
    judged: list[str] = []
    verify = world.service.ctx.hasher.verify

    def counting_verify(password: str, stored: str | None) -> bool:
        judged.append(password)
        return verify(password, stored)

    world.service.ctx.hasher.verify = counting_verify  # type: ignore[method-assign]

    def guess(i: int) -> str:
        try:
            world.service.signin.signin("ada@example.com", f"wrong guess {i:04d}x", f"203.0.113.{i}", "t")
        except DomainError as exc:
            return exc.code
        return "signed-in"

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(guess, range(30)))
    assert len(judged) <= 10
    assert answers.count("invalid-credentials") == len(judged)
    assert set(answers) <= {"invalid-credentials", "too-many-attempts"}


@pytest.mark.policy("P22", "P25")
def test_every_password_check_counts_on_the_sign_in_throttle(world: World) -> None:
    _, principal = world.account()
    answers = []
    for _ in range(15):
        try:
            world.service.credentials.change_password(
                principal, Proof(current_password="not my password 123"), "a new passphrase 456", "198.51.100.1", "t"
            )
        except DomainError as exc:
            answers.append(exc.code)
    assert answers[:10] == ["invalid-current-password"] * 10
    assert "too-many-attempts" in answers


@pytest.mark.policy("P22")
def test_a_success_takes_its_attempt_back(world: World) -> None:
    world.account()
    for _ in range(12):  # a dozen good sign-ins from one network lock nothing
        world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t")


# -- step-up re-authentication (P25) ------------------------------------------------------------------
@pytest.mark.policy("P25")
def test_a_session_alone_cannot_enrol_a_second_factor(world: World) -> None:
    token, principal = world.account()
    with pytest.raises(ReauthenticationRequired) as refused:
        world.service.credentials.totp_enroll(principal, Proof(), "198.51.100.1", "t")
    assert refused.value.code == "reauthentication-required"
    assert "current_password" in refused.value.extensions["methods"]
    enrolled = world.service.credentials.totp_enroll(principal, Proof(PASSWORD), "198.51.100.1", "t")
    code = pyotp.TOTP(enrolled["secret"]).at(world.clock())
    fresh = world.service.authenticate(token)  # the step-up is kept on the session, not on this object
    codes = world.service.credentials.totp_activate(fresh, code, Proof(), "198.51.100.1", "t")  # within 10 min
    assert len(codes) == 10


@pytest.mark.policy("P25")
def test_the_step_up_counts_for_ten_minutes_then_again_needs_proof(world: World) -> None:
    _, principal = world.account()
    world.service.step_up.require(principal, Proof(PASSWORD), "198.51.100.1", "t")
    world.clock.advance(minutes=9)
    assert world.service.step_up.require(principal, Proof(), "198.51.100.1", "t") == "recent"
    world.clock.advance(minutes=2)
    with pytest.raises(ReauthenticationRequired):
        world.service.step_up.require(principal, Proof(), "198.51.100.1", "t")
    with pytest.raises(ReauthenticationRequired) as wrong:  # a proof sent is checked, even when recent
        world.service.step_up.require(principal, Proof("not my password 1"), "198.51.100.1", "t")
    assert wrong.value.code == "invalid-current-password"


@pytest.mark.policy("P25", "P15")
def test_an_email_change_is_checked_before_any_change_is_applied(world: World) -> None:
    _, principal = world.account()
    with pytest.raises(ReauthenticationRequired):
        world.service.profile.update(
            principal, {"first_name": "Eve", "email": "eve@example.com"}, Proof(), "198.51.100.1", "t"
        )
    assert world.stores.accounts.find_by_email("ada@example.com").first_name == "Ada"  # type: ignore[union-attr]
    assert not world.mails.to("eve@example.com")


@pytest.mark.policy("P25", "P2")
def test_a_google_only_account_changes_its_email_only_with_a_fresh_google_token(world: World) -> None:
    world.google.identities["tok-old"] = GoogleIdentity(
        "g-1", "uid-1", "gina@example.com", "Gina", "G", world.clock() - timedelta(minutes=30)
    )
    token, _, _ = world.service.google.signin("tok-old", "198.51.100.1", "t")
    principal = world.service.authenticate(token)
    with pytest.raises(ReauthenticationRequired):
        world.service.profile.update(principal, {"email": "new@example.com"}, Proof(), "198.51.100.1", "t")
    with pytest.raises(ReauthenticationRequired) as stale:
        world.service.profile.update(
            principal, {"email": "new@example.com"}, Proof(google_id_token="tok-old"), "198.51.100.1", "t"
        )
    assert stale.value.code == "reauthentication-stale"
    world.google.identities["tok-new"] = GoogleIdentity("g-1", "uid-1", "gina@example.com", "Gina", "G", world.clock())
    world.service.profile.update(
        principal, {"email": "new@example.com"}, Proof(google_id_token="tok-new"), "198.51.100.1", "t"
    )
    assert world.mails.to("new@example.com", "confirm your new email")


# -- second factor (P25) ------------------------------------------------------------------------------
def _with_totp(world: World) -> tuple[Any, pyotp.TOTP, list[str]]:
    token, principal = world.account()
    enrolled = world.service.credentials.totp_enroll(principal, Proof(PASSWORD), "198.51.100.1", "t")
    totp = pyotp.TOTP(enrolled["secret"])
    principal = world.service.authenticate(token)
    codes = world.service.credentials.totp_activate(principal, totp.at(world.clock()), Proof(), "198.51.100.1", "t")
    world.clock.advance(seconds=31)
    return principal, totp, codes


@pytest.mark.policy("P25", "P22")
def test_non_ascii_digits_are_a_refused_code_not_a_crash(world: World) -> None:
    _with_totp(world)
    with pytest.raises(InvalidCredentials) as refused:
        world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t", totp_code="١٢٣٤٥٦")
    assert refused.value.code == "invalid-mfa-code"
    with pytest.raises(InvalidCredentials):
        world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t", recovery_code="１２３-４５６")


@pytest.mark.policy("P25")
def test_a_reset_of_an_account_with_totp_asks_for_a_code(world: World) -> None:
    _, _totp, codes = _with_totp(world)
    world.service.credentials.request_reset("ada@example.com")
    world.drain()
    link = world.mails.token("ada@example.com", "reset")
    with pytest.raises(InvalidCredentials) as asked:
        world.service.credentials.reset_password(link, "a brand new passphrase", "198.51.100.1", "t")
    assert asked.value.code == "mfa-required"
    with pytest.raises(InvalidCredentials):
        world.service.credentials.reset_password(
            link, "a brand new passphrase", "198.51.100.1", "t", totp_code="000000"
        )
    world.service.credentials.reset_password(
        link, "a brand new passphrase", "198.51.100.1", "t", recovery_code=codes[0]
    )  # the token survived the refusals
    with pytest.raises(InvalidToken):
        world.service.credentials.reset_password(link, "another passphrase 77", "198.51.100.1", "t", totp_code="1")
    with pytest.raises(InvalidCredentials) as mfa:
        world.service.signin.signin("ada@example.com", "a brand new passphrase", "198.51.100.1", "t")
    assert mfa.value.code == "mfa-required"  # the reset kept the second factor: the owner's, not an intruder's


@pytest.mark.policy("P25")
def test_support_removes_a_lost_second_factor_and_the_owner_is_told(world: World) -> None:
    principal, _, _ = _with_totp(world)
    done = world.service.credentials.remove_second_factor(principal.account.id, "staff:acc_dpo", "ticket 42")
    assert done["totp_enabled"] is False
    assert world.mails.to("ada@example.com", "removed by support")
    assert "totp_removed_by_staff" in world.events(principal.account.id)
    with pytest.raises(Conflict):
        world.service.credentials.remove_second_factor(principal.account.id, "staff:acc_dpo", "again")


# -- forgot password and Google (P22, P2) -------------------------------------------------------------
@pytest.mark.policy("P22")
def test_forgot_password_does_the_same_work_for_every_address(world: World) -> None:
    world.account()
    sent = len(world.mails.sent)
    world.service.credentials.request_reset("ada@example.com")
    world.service.credentials.request_reset("nobody@example.com")
    assert [k for k, _ in world.queue] == ["password_reset", "password_reset"]
    assert len(world.mails.sent) == sent  # nothing address-dependent ran in the request
    world.drain()
    assert world.mails.to("ada@example.com", "reset") and not world.mails.to("nobody@example.com")


@pytest.mark.policy("P2", "P22")
def test_google_linking_to_an_existing_account_mails_the_owner(world: World) -> None:
    world.account()
    world.google.identities["tok"] = GoogleIdentity("g-9", "uid-9", "ada@example.com", "Ada", "L", world.clock())
    world.service.google.signin("tok", "203.0.113.5", "t")
    assert world.mails.to("ada@example.com", "google sign-in was linked")
    world.service.google.signin("tok", "203.0.113.5", "t")
    assert len(world.mails.to("ada@example.com", "google sign-in was linked")) == 1  # only when linking


@pytest.mark.policy("P16")
def test_an_unverified_legacy_account_cannot_sign_in(world: World) -> None:
    world.account()
    account = world.stores.accounts.find_by_email("ada@example.com")
    world.stores.accounts.update(account.id, {"email_verified": False})  # type: ignore[union-attr]
    with pytest.raises(Forbidden):
        world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t")


# -- last use and reactivation (P19, P27) -------------------------------------------------------------
@pytest.mark.policy("P27")
def test_last_use_is_recorded_at_most_once_a_day_and_moves_the_purge_date(world: World) -> None:
    token, principal = world.account()
    first = principal.account.purge_at
    assert first is not None and first.year == world.clock().year + 1  # 12 months after the last use
    writes: list[dict[str, Any]] = []
    update = world.stores.accounts.update
    world.stores.accounts.update = lambda account_id, changes: (writes.append(changes), update(account_id, changes))  # type: ignore[method-assign]
    for _ in range(20):
        world.clock.advance(minutes=10)
        world.service.authenticate(token)
    assert not [w for w in writes if "last_active_at" in w]  # 20 requests in 3 hours: no last-use write
    update(principal.account.id, {"last_active_at": world.clock() - timedelta(days=1)})  # the last use: a day ago
    principal = world.service.authenticate(token)
    assert [w for w in writes if "last_active_at" in w] and principal.account.purge_at > first


@pytest.mark.policy("P19")
def test_a_cancelled_account_signs_in_only_to_reactivate_and_its_clock_stops(world: World) -> None:
    _, principal = world.account()
    account_id = principal.account.id
    world.clock.advance(days=40)
    world.stores.accounts.update(
        account_id,
        {"status": "cancelled", "cancelled_at": world.clock(), "purge_at": world.clock() + timedelta(days=365)},
    )
    with pytest.raises(Conflict) as asked:
        world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t")
    assert asked.value.code == "account-cancelled" and asked.value.extensions["purge_at"]
    assert world.stores.accounts.get(account_id).status == "cancelled"  # type: ignore[union-attr]
    with pytest.raises(InvalidCredentials):  # a wrong password learns nothing about the cancellation
        world.service.signin.signin("ada@example.com", OTHER, "198.51.100.1", "t", reactivate=True)
    world.service.signin.signin("ada@example.com", PASSWORD, "198.51.100.1", "t", reactivate=True)
    account = world.stores.accounts.get(account_id)
    assert account.status == "active" and account.cancelled_at is None  # type: ignore[union-attr]
    assert "account_reactivated" in world.events(account_id)
    assert world.resyncs == [account_id]  # the processors hear that marketing may resume (per its consent)
    assert world.mails.to("ada@example.com", "active again")


@pytest.mark.policy("P18")
def test_the_sign_up_choice_is_the_first_consent_record(world: World) -> None:
    world.service.registration.signup(
        "ada@example.com", PASSWORD, "Ada", "L", "198.51.100.1", "t", marketing_consent=True
    )
    world.service.registration.signup("bob@example.com", PASSWORD, "Bob", "L", "198.51.100.1", "t")
    for address in ("ada@example.com", "bob@example.com"):
        world.service.registration.confirm(world.mails.token(address, "confirm"), PASSWORD, "198.51.100.1", "t")
    ada = world.stores.accounts.find_by_email("ada@example.com")
    bob = world.stores.accounts.find_by_email("bob@example.com")
    assert world.consents == [(ada.id, True, "signup"), (bob.id, False, "signup")]  # type: ignore[union-attr]
