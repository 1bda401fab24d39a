"""Firestore, Cloud Storage and the lease behind the retention sweep (`shared/retention/ports.py`).

Every query is a range query on a purge-date field (`field <= cutoff`, ordered by it and by document
path), served by Firestore's automatic single-field index: its cost follows the documents due. Deletes
go through a BulkWriter (parallel, retried); deleting a document already gone is no error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.adapters import storage as gcs
from shared.adapters.firestore import transact
from shared.idempotency import IdempotencyStore, InProgress
from shared.retention.ports import Doc, StoredObject

ACCOUNTS = "accounts"
STATE = "retention_sweep_state"


class FirestoreRetentionStore:
    def __init__(self, db: firestore.Client) -> None:
        self.db = db

    def _query(self, collection: str, field: str, cutoff: datetime, group: bool) -> Any:
        source = self.db.collection_group(collection) if group else self.db.collection(collection)
        return source.where(filter=FieldFilter(field, "<=", cutoff))

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
        query = self._query(collection, field, cutoff, group).order_by(field).order_by(FieldPath.document_id())
        if after is not None:
            value, path = after
            query = query.start_after({field: value, FieldPath.document_id(): self.db.document(path)})
        return [
            Doc(path=snap.reference.path, id=snap.id, data=snap.to_dict() or {}) for snap in query.limit(limit).stream()
        ]

    def count_due(self, collection: str, field: str, cutoff: datetime, *, group: bool = False) -> int:
        result = self._query(collection, field, cutoff, group).count().get()
        return int(result[0][0].value)

    def delete(self, paths: list[str]) -> int:
        if not paths:
            return 0
        writer = self.db.bulk_writer()
        for path in paths:
            writer.delete(self.db.document(path))
        writer.close()
        return len(paths)

    def account(self, account_id: str) -> dict[str, Any] | None:
        snap = self.db.collection(ACCOUNTS).document(account_id).get()
        return (snap.to_dict() or {}) if snap.exists else None

    def set_account(self, account_id: str, changes: dict[str, Any]) -> None:
        with contextlib.suppress(gexc.NotFound):  # erased meanwhile: nothing to keep up to date
            self.db.collection(ACCOUNTS).document(account_id).update(changes)

    def claim_warning(self, account_id: str, now: datetime) -> dict[str, Any] | None:
        ref = self.db.collection(ACCOUNTS).document(account_id)

        def run(tx: firestore.Transaction) -> dict[str, Any] | None:
            snap = ref.get(transaction=tx)
            data = (snap.to_dict() or {}) if snap.exists else {}
            if not claimable(data, now):
                return None
            tx.update(ref, {"purge_warning_at": None, "purge_warning_sent_for": data["purge_at"]})
            return data

        return transact(self.db, run)

    def accounts_after(self, cursor: str | None, limit: int) -> list[Doc]:
        query = self.db.collection(ACCOUNTS).order_by(FieldPath.document_id())
        if cursor:
            query = query.start_after({FieldPath.document_id(): self.db.collection(ACCOUNTS).document(cursor)})
        return [
            Doc(path=snap.reference.path, id=snap.id, data=snap.to_dict() or {}) for snap in query.limit(limit).stream()
        ]

    def state(self, name: str) -> dict[str, Any]:
        snap = self.db.collection(STATE).document(name).get()
        return (snap.to_dict() or {}) if snap.exists else {}

    def set_state(self, name: str, data: dict[str, Any]) -> None:
        self.db.collection(STATE).document(name).set(data)


def claimable(data: dict[str, Any], now: datetime) -> bool:
    """The warning is due, the purge still ahead, and no warning went out for this purge date."""
    warn_at, purge_at = data.get("purge_warning_at"), data.get("purge_at")
    if warn_at is None or purge_at is None or warn_at > now or purge_at <= now:
        return False
    return data.get("purge_warning_sent_for") != purge_at


class StorageObjects:
    def __init__(self, client: Any) -> None:
        self.client = client

    def list(self, bucket: str, prefix: str, match_glob: str | None = None) -> Iterator[StoredObject]:
        handle = gcs.bucket(self.client, bucket)
        options: dict[str, Any] = {"prefix": prefix}
        if match_glob and not gcs.emulated():  # the storage emulator knows no matchGlob
            options["match_glob"] = match_glob
        for blob in self.client.list_blobs(handle, **options):
            yield StoredObject(name=blob.name, created=blob.time_created)

    def delete(self, bucket: str, names: list[str]) -> int:
        handle = gcs.bucket(self.client, bucket)
        return gcs.delete_objects(handle, (handle.blob(name) for name in names))


class IdempotencyLease:
    """A category's lease as an idempotency record: released at the end, expired if the run died."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self._claims: dict[str, Any] = {}

    def acquire(self, name: str, seconds: int) -> str | None:
        try:
            claim = self.store.claim(name, scope="retention-sweep", lease=timedelta(seconds=seconds))
        except InProgress:
            return None
        token = getattr(claim, "token", None)
        if token is None:  # a completed record (never written by the sweep): take it over
            return None
        self._claims[token] = claim
        return token

    def release(self, name: str, token: str) -> None:
        claim = self._claims.pop(token, None)
        if claim is not None:
            self.store.release(claim)
