"""Sign-in throttling (P22): a pure state machine, stored per account key and per IP key.

- 10 failures within 15 minutes lock the key; each new lockout doubles the wait (1, 2, 4 … minutes,
  at most 60), and the count of lockouts resets after a quiet hour.
- Never more than 100 failures per key per rolling hour (NIST SP 800-63B 5.2.2): the 100th
  failure locks the key until the oldest of them is an hour old.
A locked key answers 429 with Retry-After without looking at the password, so a locked attempt is
not a failure and cannot extend its own lock.

Every attempt is counted *before* it is judged (`reserve_attempt`, in the same transaction as the
check), as if it failed; a success then takes its own attempt back (`undo_attempt`) or clears the
account's key. So parallel guesses cannot all pass a check made before any of them was counted:
under any concurrency at most WINDOW_LIMIT attempts per key are judged in a window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

WINDOW = timedelta(minutes=15)
WINDOW_LIMIT = 10
HOUR = timedelta(hours=1)
HOUR_LIMIT = 100
BASE_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(hours=1)


@dataclass
class ThrottleState:
    failures: list[datetime] = field(default_factory=list)
    lockouts: int = 0
    locked_until: datetime | None = None

    @classmethod
    def from_doc(cls, data: dict[str, Any] | None) -> ThrottleState:
        if not data:
            return cls()
        return cls(
            failures=list(data.get("failures") or []),
            lockouts=int(data.get("lockouts") or 0),
            locked_until=data.get("locked_until"),
        )

    def to_doc(self) -> dict[str, Any]:
        last = max(self.failures) if self.failures else None
        horizon = max(filter(None, [last and last + HOUR, self.locked_until]), default=None)
        return {
            "failures": self.failures,
            "lockouts": self.lockouts,
            "locked_until": self.locked_until,
            "expire_at": horizon,  # Firestore TTL removes the record once nothing in it matters
        }


def retry_after(state: ThrottleState, now: datetime) -> int | None:
    """Seconds until the key may try again, or None when it is not locked."""
    if state.locked_until and state.locked_until > now:
        return max(1, math.ceil((state.locked_until - now).total_seconds()))
    return None


def record_failure(state: ThrottleState, now: datetime) -> tuple[ThrottleState, bool]:
    """The state after one more failure, and whether this failure locked the key."""
    recent = [t for t in state.failures if now - t < HOUR]
    lockouts = state.lockouts if recent else 0  # a quiet hour forgives earlier lockouts
    recent.append(now)
    recent = recent[-HOUR_LIMIT:]
    locked_until = state.locked_until if state.locked_until and state.locked_until > now else None
    in_window = sum(1 for t in recent if now - t < WINDOW)
    locked = False
    if in_window >= WINDOW_LIMIT:
        lockouts += 1
        wait = min(BASE_LOCK * (2 ** (lockouts - 1)), MAX_LOCK)
        locked_until = max(filter(None, [locked_until, now + wait]))
        locked = True
    if len(recent) >= HOUR_LIMIT:
        until = recent[0] + HOUR
        locked_until = max(filter(None, [locked_until, until]))
        locked = True
    return ThrottleState(failures=recent, lockouts=lockouts, locked_until=locked_until), locked


def reserve_attempt(state: ThrottleState, now: datetime) -> tuple[ThrottleState, bool]:
    """Count an attempt before it is judged (it counts as a failure until `undo_attempt`)."""
    return record_failure(state, now)


def undo_attempt(state: ThrottleState, at: datetime) -> ThrottleState:
    """Take back one attempt reserved at `at` that succeeded (a lock it caused stays: it errs safe)."""
    failures = list(state.failures)
    if at in failures:
        failures.remove(at)
    return ThrottleState(failures=failures, lockouts=state.lockouts, locked_until=state.locked_until)


def record_success(state: ThrottleState) -> ThrottleState:
    """A successful sign-in clears the account's failures (not its hourly cap on the IP key)."""
    return ThrottleState()
