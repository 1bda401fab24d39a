"""After the whole suite: every place that holds data is declared in the data map (P11, P24).

Export and erasure read `shared/datamap.py`; a collection they do not know would be silently
missed by an erasure. So every collection (and sub-collection) in the emulator's project, and
every object prefix in every bucket, must be declared there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from shared import datamap

pytestmark = [pytest.mark.after_suite, pytest.mark.policy("P11", "P24")]


def _collection_ids(collection: firestore.CollectionReference, depth: int = 0) -> Iterator[tuple[str, int]]:
    yield collection.id, depth
    for doc in collection.list_documents():
        for sub in doc.collections():
            yield from _collection_ids(sub, depth + 1)


def test_every_firestore_collection_is_declared(stack: Any) -> None:
    db = firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])
    found = {name: depth for root in db.collections() for name, depth in _collection_ids(root)}
    assert found, "the suite wrote nothing: the check would prove nothing"
    undeclared = sorted(set(found) - datamap.declared_collections())
    assert not undeclared, f"collections missing from shared/datamap.py: {undeclared}"
    for name, depth in found.items():
        if depth:
            assert datamap.firestore_place(name).group, f"{name} is a sub-collection: declare it with group=True"


def test_every_bucket_prefix_is_declared(stack: Any) -> None:
    if "STORAGE_EMULATOR_HOST" not in stack.env:
        pytest.skip("no storage emulator in this stack")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    prefixes = {(place.bucket_setting, place.prefix.split("{account_id}", 1)[0]) for place in datamap.STORAGE}
    for bucket in client.list_buckets():
        for blob in client.list_blobs(bucket):
            declared = [
                setting
                for setting, prefix in prefixes
                if stack.env.get(setting) == bucket.name and blob.name.startswith(prefix)
            ]
            assert declared, f"gs://{bucket.name}/{blob.name} is in no place of shared/datamap.py"
