"""Sign-in throttling state machine (P22)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.identity.throttle import ThrottleState, record_failure, retry_after

pytestmark = pytest.mark.policy("P22")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def fail(state: ThrottleState, at: datetime, times: int = 1) -> tuple[ThrottleState, bool]:
    locked = False
    for _ in range(times):
        state, locked = record_failure(state, at)
    return state, locked


def test_nine_failures_do_not_lock_the_tenth_does() -> None:
    state, locked = fail(ThrottleState(), T0, 9)
    assert not locked and retry_after(state, T0) is None
    state, locked = fail(state, T0)
    assert locked and retry_after(state, T0) == 60


def test_failures_older_than_the_window_do_not_count() -> None:
    state, _ = fail(ThrottleState(), T0, 9)
    state, locked = fail(state, T0 + timedelta(minutes=16))
    assert not locked


def test_backoff_grows_with_each_lockout() -> None:
    state, _ = fail(ThrottleState(), T0, 10)
    waits = [retry_after(state, T0)]
    now = T0
    for _ in range(3):
        now = state.locked_until  # type: ignore[assignment]
        state, locked = fail(state, now)
        assert locked
        waits.append(retry_after(state, now))
    assert waits == [60, 120, 240, 480]


def test_backoff_is_capped_at_an_hour_and_forgiven_after_a_quiet_hour() -> None:
    state = ThrottleState(failures=[T0] * 9, lockouts=12)
    state, _ = fail(state, T0)
    assert retry_after(state, T0) == 3600
    later = T0 + timedelta(hours=2)
    state, _ = fail(ThrottleState(failures=[later] * 9, lockouts=state.lockouts), later)
    assert retry_after(state, later) == 3600  # lockouts carried: failures were recent
    quiet = ThrottleState(failures=[T0], lockouts=12)
    state, _ = fail(quiet, T0 + timedelta(hours=1, minutes=1))
    assert state.lockouts == 0


def test_never_more_than_one_hundred_failures_an_hour() -> None:
    state = ThrottleState(failures=[T0 + timedelta(seconds=30 * i) for i in range(99)])
    now = T0 + timedelta(minutes=50)
    state, locked = record_failure(state, now)
    assert locked and len(state.failures) == 100
    # Locked until the oldest of the hundred is an hour old, longer than the window's own backoff.
    assert retry_after(state, now) == 600
    assert retry_after(state, T0 + timedelta(hours=1)) is None


def test_state_round_trips_and_expires() -> None:
    state, _ = fail(ThrottleState(), T0, 10)
    doc = state.to_doc()
    assert doc["expire_at"] >= T0 + timedelta(hours=1)
    assert ThrottleState.from_doc(doc) == state
