"""What the retention sweep needs from storage (P27): range queries on purge dates, deletes, a lease.

Two implementations: Firestore and Cloud Storage (`shared/retention/stores.py`) and an in-memory twin
(`shared/retention/memory.py`) on which the unit tests drive the clock across every boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Doc:
    """A document found by a range query: its full path (collection/id), id and fields."""

    path: str
    id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class StoredObject:
    name: str
    created: datetime


class RetentionStore(Protocol):
    def due(
        self,
        collection: str,
        field: str,
        cutoff: datetime,
        limit: int,
        *,
        group: bool = False,
        after: tuple[Any, str] | None = None,
    ) -> list[Doc]:
        """Documents with `field <= cutoff`, oldest first, after the cursor `(value, path)`: one indexed range
        query, at most `limit` documents."""

    def count_due(self, collection: str, field: str, cutoff: datetime, *, group: bool = False) -> int:
        """How many documents have `field <= cutoff` (an aggregation query: no document is read)."""

    def delete(self, paths: list[str]) -> int:
        """Delete documents by path (a missing one is no error); how many were asked."""

    def account(self, account_id: str) -> dict[str, Any] | None: ...

    def set_account(self, account_id: str, changes: dict[str, Any]) -> None: ...

    def claim_warning(self, account_id: str, now: datetime) -> dict[str, Any] | None:
        """In one transaction: when the account's warning is due and not sent for its purge date, mark it sent
        (`purge_warning_at` cleared, `purge_warning_sent_for` = `purge_at`) and return the account."""

    def accounts_after(self, cursor: str | None, limit: int) -> list[Doc]:
        """Accounts by id after `cursor` (the one-time backfill of purge dates)."""

    def state(self, name: str) -> dict[str, Any]: ...

    def set_state(self, name: str, data: dict[str, Any]) -> None: ...


class Objects(Protocol):
    def list(self, bucket: str, prefix: str, match_glob: str | None = None) -> Iterator[StoredObject]: ...

    def delete(self, bucket: str, names: list[str]) -> int: ...


class Lease(Protocol):
    def acquire(self, name: str, seconds: int) -> str | None:
        """A token when this run holds `name` now; None when another run holds it."""

    def release(self, name: str, token: str) -> None: ...
