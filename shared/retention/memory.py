"""In-memory twins of the retention sweep's ports, for unit tests (`shared/retention/ports.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shared.retention.ports import Doc, StoredObject
from shared.retention.stores import ACCOUNTS, claimable


class MemoryRetentionStore:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}  # path -> fields
        self.states: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.queries = 0

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.docs[f"{collection}/{doc_id}"] = dict(data)

    def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self.docs.get(f"{collection}/{doc_id}")

    def _of(self, collection: str, group: bool) -> list[tuple[str, dict[str, Any]]]:
        def matches(path: str) -> bool:
            parts = path.split("/")
            return parts[-2] == collection if group else len(parts) == 2 and parts[0] == collection

        return [(p, d) for p, d in self.docs.items() if matches(p)]

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
        self.queries += 1
        found = sorted(
            (
                (d[field], p, d)
                for p, d in self._of(collection, group)
                if d.get(field) is not None and d[field] <= cutoff
            ),
            key=lambda t: (t[0], t[1]),
        )
        if after is not None:
            found = [t for t in found if (t[0], t[1]) > after]
        return [Doc(path=p, id=p.rsplit("/", 1)[1], data=dict(d)) for _, p, d in found[:limit]]

    def count_due(self, collection: str, field: str, cutoff: datetime, *, group: bool = False) -> int:
        return sum(1 for _, d in self._of(collection, group) if d.get(field) is not None and d[field] <= cutoff)

    def delete(self, paths: list[str]) -> int:
        for path in paths:
            if self.docs.pop(path, None) is not None:
                self.deleted.append(path)
        return len(paths)

    def account(self, account_id: str) -> dict[str, Any] | None:
        return self.get(ACCOUNTS, account_id)

    def set_account(self, account_id: str, changes: dict[str, Any]) -> None:
        doc = self.get(ACCOUNTS, account_id)
        if doc is not None:
            doc.update(changes)

    def claim_warning(self, account_id: str, now: datetime) -> dict[str, Any] | None:
        data = self.get(ACCOUNTS, account_id)
        if data is None or not claimable(data, now):
            return None
        snapshot = dict(data)
        data.update({"purge_warning_at": None, "purge_warning_sent_for": data["purge_at"]})
        return snapshot

    def accounts_after(self, cursor: str | None, limit: int) -> list[Doc]:
        ids = sorted(p.split("/")[1] for p, _ in self._of(ACCOUNTS, False))
        ids = [i for i in ids if cursor is None or i > cursor][:limit]
        return [Doc(path=f"{ACCOUNTS}/{i}", id=i, data=dict(self.docs[f"{ACCOUNTS}/{i}"])) for i in ids]

    def state(self, name: str) -> dict[str, Any]:
        return dict(self.states.get(name, {}))

    def set_state(self, name: str, data: dict[str, Any]) -> None:
        self.states[name] = dict(data)


class MemoryObjects:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, datetime]] = {}
        self.listed: list[tuple[str, str, str | None]] = []

    def put(self, bucket: str, name: str, created: datetime) -> None:
        self.buckets.setdefault(bucket, {})[name] = created

    def list(self, bucket: str, prefix: str, match_glob: str | None = None) -> Iterator[StoredObject]:
        self.listed.append((bucket, prefix, match_glob))
        import fnmatch

        for name, created in sorted(self.buckets.get(bucket, {}).items()):
            if name.startswith(prefix) and (match_glob is None or fnmatch.fnmatch(name, match_glob.replace("**", "*"))):
                yield StoredObject(name, created)

    def delete(self, bucket: str, names: list[str]) -> int:
        for name in names:
            self.buckets.get(bucket, {}).pop(name, None)
        return len(names)


class MemoryLease:
    def __init__(self) -> None:
        self.held: dict[str, str] = {}
        self._n = 0

    def acquire(self, name: str, seconds: int) -> str | None:
        if name in self.held:
            return None
        self._n += 1
        self.held[name] = token = f"t{self._n}"
        return token

    def release(self, name: str, token: str) -> None:
        if self.held.get(name) == token:
            del self.held[name]
