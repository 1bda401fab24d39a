"""Account cancellation (P19) on the in-memory identity stores: the use case, in milliseconds.

The end-to-end tests (tests/e2e/test_cancellation.py) prove the same through the gateway, with
Firestore, localstripe, the mail outbox and the telemetry aggregator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.bootstrap import build_cancellation_service
from shared.errors import Conflict, NotAuthenticated, NotFound, ReauthenticationRequired
from shared.identity.reauth import Proof
from shared.privacy.cancellation import Cancellation
from shared.retention.policy import add_months
from tests.identity_world import PASSWORD, IdentityWorld

pytestmark = pytest.mark.policy("P19")

IP, UA = "198.51.100.7", "pytest"


class Billing:
    """The billing side: records each call; `fail` makes Stripe unavailable."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: Exception | None = None
        self.period_end = datetime(2026, 4, 15, tzinfo=UTC)

    def end_subscriptions_at_period_end(self, account_id: str) -> list[dict[str, Any]]:
        if self.fail is not None:
            raise self.fail
        self.calls.append(account_id)
        return [{"id": "sub_1", "cancel_at_period_end": True, "current_period_end": self.period_end}]


class World(IdentityWorld):
    """The identity world, with the cancellation use case over it and a billing side that records."""

    def __init__(self) -> None:
        super().__init__(project="demo-cancellation", now=datetime(2026, 3, 31, 9, 0, tzinfo=UTC))
        self.billing = Billing()
        self.marketing_stopped = self.resyncs  # the cancellation and a reactivation both resync
        self.service: Cancellation = build_cancellation_service(
            self.settings,
            accounts=self.stores.accounts,
            identity=lambda: self.identity,
            billing=lambda: self.billing,
            mailer=self.mails,
            clock=self.clock,
            marketing_stopped=self.marketing_stopped.append,
        )


@pytest.fixture
def world() -> World:
    return World()


def test_the_holder_cancels_with_a_step_up_and_everything_stops(world: World) -> None:
    token, principal = world.account()
    other_token, _, _ = world.identity.signin.signin("ada@example.com", PASSWORD, "198.51.100.8", "other")
    account_id = principal.account.id
    with pytest.raises(ReauthenticationRequired):  # a session token alone cancels nothing (P25)
        world.service.cancel_own(principal, Proof(), IP, UA)
    with pytest.raises(ReauthenticationRequired):
        world.service.cancel_own(principal, Proof(current_password="not the password at all"), IP, UA)
    assert world.stores.accounts.get(account_id).status == "active"  # type: ignore[union-attr]
    assert world.billing.calls == []

    world.clock.now += timedelta(minutes=5)
    answer = world.service.cancel_own(principal, Proof(current_password=PASSWORD), IP, UA)
    now = world.clock.now
    purge_at = add_months(now, 12)  # 2027-03-31 09:05: 12 months after the cancellation (the later date)
    assert answer == {"status": "cancelled", "cancelled_at": now.isoformat(), "purge_at": purge_at.isoformat()}
    stored = world.stores.accounts.get(account_id)
    assert stored is not None and stored.status == "cancelled" and stored.cancelled_at == now
    assert stored.purge_at == purge_at and stored.purge_warning_at == purge_at - timedelta(days=30)
    # Every session ends, the current one too.
    for used in (token, other_token):
        with pytest.raises(NotAuthenticated):
            world.identity.authenticate(used)
    assert world.stores.sessions.of_account(account_id) == []
    # The subscription ends at the period's end; a security event; the purge date mailed.
    assert world.billing.calls == [account_id]
    assert world.events(account_id)[-1] == "account_cancelled"
    [mail] = world.mails.to("ada@example.com", "cancelled")
    assert "2027-03-31" in mail.subject and "2027-03-31" in mail.text
    assert "Sign in before 2027-03-31" in mail.text and "2026-04-15" in mail.text
    assert mail.category == "transactional"
    assert world.marketing_stopped == [account_id]  # HubSpot and Intercom hear that marketing stops (P18)


def test_cancelling_again_answers_the_same_purge_date_and_does_nothing_more(world: World) -> None:
    _, principal = world.account()
    account_id = principal.account.id
    first = world.service.cancel(account_id, "staff:acc_support", "ticket 1234: the holder asked by phone")
    events, mails = list(world.events(account_id)), len(world.mails.sent)
    world.clock.now += timedelta(days=3)
    again = world.service.cancel(account_id, "cli:ops", "ticket 1234 again")
    assert again == first
    assert world.billing.calls == [account_id]
    assert world.events(account_id) == events and len(world.mails.sent) == mails
    assert world.stores.accounts.get(account_id).purge_at.isoformat() == first["purge_at"]  # type: ignore[union-attr]


def test_the_purge_counts_from_the_later_of_last_use_and_cancellation(world: World) -> None:
    _, principal = world.account()
    account_id = principal.account.id
    later_use = world.clock.now + timedelta(days=400)  # a clock skew: last use recorded after "now"
    world.stores.accounts.update(account_id, {"last_active_at": later_use})
    answer = world.service.cancel(account_id, "staff:acc_dpo", "test")
    assert answer["purge_at"] == add_months(later_use, 12).isoformat()


def test_a_stripe_outage_changes_nothing_and_the_call_can_be_repeated(world: World) -> None:
    token, principal = world.account()
    account_id = principal.account.id
    world.billing.fail = RuntimeError("stripe unavailable")
    with pytest.raises(RuntimeError):
        world.service.cancel(account_id, "staff:acc_support", "test")
    assert world.stores.accounts.get(account_id).status == "active"  # type: ignore[union-attr]
    assert world.identity.authenticate(token).account.id == account_id
    assert world.mails.to("ada@example.com", "cancelled") == []
    world.billing.fail = None
    assert world.service.cancel(account_id, "staff:acc_support", "test")["status"] == "cancelled"


def test_only_an_existing_active_account_is_cancelled(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.cancel("acc_nobody", "staff:acc_support", "test")
    with pytest.raises(NotFound):
        world.service.cancel("", "staff:acc_support", "test")
    _, principal = world.account()
    world.stores.accounts.update(principal.account.id, {"status": "erasing"})
    with pytest.raises(Conflict):
        world.service.cancel(principal.account.id, "staff:acc_support", "test")
    assert world.billing.calls == []
