"""The retention rule for accounts (P27), as pure functions: one place computes every purge date.

An account is kept while it is used, then `account_retention_months` (12) after the later of its
last use and its cancellation; `retention_warning_days` (30) before that, a transactional mail
says that signing in keeps it. "Last use" is any authenticated request, recorded at most once per
account per day (`needs_touch`), so a busy account costs one write a day, not one per request.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

TOUCH_EVERY = timedelta(days=1)


def add_months(when: datetime, months: int) -> datetime:
    """`when` plus whole calendar months (the 31st becomes the month's last day when it has none)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def account_purge_at(
    last_active_at: datetime | None, cancelled_at: datetime | None, created_at: datetime, months: int
) -> datetime:
    """When the retention sweep erases the account: `months` after the later of last use and cancellation."""
    start = max(t for t in (last_active_at, cancelled_at, created_at) if t is not None)
    return add_months(start, months)


def warning_at(purge_at: datetime, warning_days: int) -> datetime:
    """When the "your account will be deleted" mail is due."""
    return purge_at - timedelta(days=warning_days)


def needs_touch(last_active_at: datetime | None, now: datetime) -> bool:
    """Whether an authenticated request should record last use (at most once per day)."""
    return last_active_at is None or now - last_active_at >= TOUCH_EVERY
