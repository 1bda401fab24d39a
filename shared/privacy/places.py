"""Reading and erasing the places of the data map (shared/datamap.py) for one account.

Export and erasure call these with the places the registry declares; nothing here names a place.
Firestore deletions go through a BulkWriter (batched, parallel, retried); Cloud Storage deletions in
batches of 100. Every function is idempotent: erasing a place twice finds nothing the second time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import datamap
from shared.adapters import storage as gcs
from shared.config import Settings


@dataclass(frozen=True)
class Outcome:
    """The outcome of one step. `detail` never holds personal data: it goes to the deletion record."""

    status: str  # done | not_found | retry | failed | skipped
    detail: str = ""
    retry_after: float | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # fields of the request to persist with it


def describe_retention(retention: timedelta | None) -> str:
    if retention is None:
        return "while the account is active, then the retention period of P27"
    if retention >= timedelta(days=1):
        return f"{retention.days} days"
    return f"{int(retention.total_seconds() // 3600) or 1} hours"


# -- Firestore ------------------------------------------------------------------------------------


def _query(db: firestore.Client, place: datamap.FirestorePlace, account_id: str) -> firestore.Query:
    assert place.account_field is not None
    base = db.collection_group(place.collection) if place.group else db.collection(place.collection)
    return base.where(filter=FieldFilter(place.account_field, "==", account_id))


def firestore_records(db: firestore.Client, place: datamap.FirestorePlace, account_id: str) -> Iterator[dict[str, Any]]:
    """The account's documents in `place`, restricted to the place's export fields."""
    if place.account_field is None:
        snap = db.collection(place.collection).document(account_id).get()
        snaps: Any = [snap] if snap.exists else []
    else:
        snaps = _query(db, place, account_id).stream()
    for snap in snaps:
        data = snap.to_dict() or {}
        if place.export_fields is not None:
            data = {k: data[k] for k in place.export_fields if k in data}
        yield data


class _Writer:
    """A BulkWriter that counts the writes that failed for good (after its own retries)."""

    def __init__(self, db: firestore.Client) -> None:
        self.failures = 0
        self._lock = threading.Lock()
        self.bulk = db.bulk_writer()
        self.bulk.on_write_error(self._on_error)

    def _on_error(self, error: Any, _writer: Any) -> bool:
        if error.attempts < 5:
            return True  # retry (BulkWriter backs off)
        with self._lock:
            self.failures += 1
        return False


def erase_firestore_place(
    db: firestore.Client, place: datamap.FirestorePlace, account_id: str, keep_ids: frozenset[str] = frozenset()
) -> Outcome:
    """Erase the account's documents of `place` as the registry says (delete, anonymise, expire, keep)."""
    if place.erasure == "keep":
        return Outcome("skipped", f"kept: {place.reason or 'holds no personal data'}")
    if place.erasure == "expire":
        return Outcome("skipped", f"expires on its own (TTL) within {describe_retention(place.retention)}")
    if place.erasure == "anonymise":
        return _anonymise(db, place, account_id)
    writer = _Writer(db)
    deleted = 0
    if place.account_field is None:
        ref = db.collection(place.collection).document(account_id)
        # The document and everything under it (sub-collections), whatever their names.
        deleted = db.recursive_delete(ref, bulk_writer=writer.bulk)
    else:
        for snap in _query(db, place, account_id).select([]).stream():
            if snap.id in keep_ids:
                continue
            writer.bulk.delete(snap.reference)
            deleted += 1
    writer.bulk.close()
    if writer.failures:
        return Outcome("retry", f"{writer.failures} of {deleted} deletions failed")
    return Outcome("done", f"{deleted} documents deleted") if deleted else Outcome("not_found", "nothing held")


def _anonymise(db: firestore.Client, place: datamap.FirestorePlace, account_id: str) -> Outcome:
    fields = getattr(place, "anonymise_fields", None)
    if not fields or place.account_field is None:
        return Outcome("failed", f"{place.collection} is declared 'anonymise' without the fields to clear")
    writer = _Writer(db)
    changed = 0
    cleared = {name: firestore.DELETE_FIELD for name in fields}
    for snap in _query(db, place, account_id).select([]).stream():
        writer.bulk.update(snap.reference, cleared)
        changed += 1
    writer.bulk.close()
    if writer.failures:
        return Outcome("retry", f"{writer.failures} of {changed} updates failed")
    return Outcome("done", f"{changed} documents anonymised") if changed else Outcome("not_found", "nothing held")


def delete_documents(db: firestore.Client, collection: str, field_name: str, account_id: str) -> int:
    """Delete every document of `collection` whose `field_name` is the account (used for the email index)."""
    writer = _Writer(db)
    count = 0
    query = db.collection(collection).where(filter=FieldFilter(field_name, "==", account_id)).select([])
    for snap in query.stream():
        writer.bulk.delete(snap.reference)
        count += 1
    writer.bulk.close()
    if writer.failures:
        raise RuntimeError(f"{writer.failures} deletions failed")
    return count


# -- Cloud Storage --------------------------------------------------------------------------------


def bucket_name(settings: Settings, place: datamap.StoragePlace) -> str:
    return str(getattr(settings, place.bucket_setting.lower(), "") or "")


def storage_prefix(place: datamap.StoragePlace, account_id: str) -> str:
    if not account_id or "/" in account_id:
        raise ValueError("invalid account id")
    return place.prefix.format(account_id=account_id)


def delete_account_objects(client: Any, settings: Settings, place: datamap.StoragePlace, account_id: str) -> int | None:
    """Delete every object of the account in a place; how many, or None when its bucket is not configured."""
    name = bucket_name(settings, place)
    if not name:
        return None
    return gcs.delete_prefix(gcs.bucket(client, name), storage_prefix(place, account_id))


def erase_storage_place(client: Any, settings: Settings, place: datamap.StoragePlace, account_id: str) -> Outcome:
    if place.erasure == "keep":
        return Outcome("skipped", f"kept: {place.reason}")
    if place.erasure != "delete":
        return Outcome("failed", f"{place.bucket_setting}: erasure {place.erasure!r} is not supported for objects")
    deleted = delete_account_objects(client, settings, place, account_id)
    if deleted is None:
        return Outcome("failed", f"{place.bucket_setting} is not configured")
    return Outcome("done", f"{deleted} objects deleted") if deleted else Outcome("not_found", "nothing held")
