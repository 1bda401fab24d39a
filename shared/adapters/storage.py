"""Cloud Storage: one client per process, created on first use (the storage emulator locally).

Locally (`STORAGE_EMULATOR_HOST` set) the client uses anonymous credentials and the buckets the
settings name are created on first use when missing; in production terraform creates them.
Deletions go in batches (one HTTP round trip per 100 objects), reads and writes stream in chunks.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.transport.requests
from google.api_core import exceptions as gexc
from google.cloud import storage

from shared.observability import get_logger

log = get_logger(__name__)

CHUNK = 1024 * 1024  # read chunk of a streamed object
UPLOAD_CHUNK = 8 * 1024 * 1024  # resumable upload chunk (multiple of 256 KiB): bounds a writer's memory
BATCH = 100  # Cloud Storage JSON API batch limit

_lock = threading.Lock()
_clients: dict[str, storage.Client] = {}
_ensured: set[str] = set()


def emulated() -> bool:
    return bool(os.environ.get("STORAGE_EMULATOR_HOST"))


def storage_client(project_id: str) -> storage.Client:
    """The client for `project_id`; anonymous against the emulator, the runtime identity in production."""
    client = _clients.get(project_id)
    if client is None:
        with _lock:
            client = _clients.get(project_id)
            if client is None:
                if emulated():
                    from google.auth.credentials import AnonymousCredentials

                    client = storage.Client(project=project_id, credentials=AnonymousCredentials())
                else:
                    client = storage.Client(project=project_id)
                _clients[project_id] = client
    return client


def bucket(client: storage.Client, name: str) -> storage.Bucket:
    """The bucket `name`; created when missing, but only against the emulator (terraform owns production)."""
    if not name:
        raise RuntimeError("no bucket configured (BUSINESS_DATA_BUCKET / EXPORTS_BUCKET)")
    handle = client.bucket(name)
    if emulated() and name not in _ensured:
        with contextlib.suppress(gexc.Conflict):
            client.create_bucket(name)
        # As terraform makes them: no soft delete, or a deleted object would survive its erasure.
        handle.soft_delete_policy.retention_duration_seconds = 0
        handle.patch()
        _ensured.add(name)
    return handle


def list_names(handle: storage.Bucket, prefix: str) -> Iterator[storage.Blob]:
    """Every object under `prefix` (page by page: memory independent of the count)."""
    yield from handle.client.list_blobs(handle, prefix=prefix)


def delete_objects(handle: storage.Bucket, blobs: Iterable[storage.Blob]) -> int:
    """Delete `blobs` in batches; an object already gone counts as deleted. Returns how many were asked."""
    pending: list[storage.Blob] = []
    count = 0

    def flush() -> None:
        if not pending:
            return
        with handle.client.batch(raise_exception=False):
            for blob in pending:
                blob.delete()
        pending.clear()

    for blob in blobs:
        pending.append(blob)
        count += 1
        if len(pending) >= BATCH:
            flush()
    flush()
    return count


def delete_prefix(handle: storage.Bucket, prefix: str) -> int:
    """Delete every object under `prefix` (listing again until none is left). Returns how many were deleted."""
    if not prefix or not prefix.endswith("/"):
        raise ValueError(f"refusing to delete under {prefix!r}: a prefix is a folder ending in '/'")
    total = 0
    for _ in range(5):
        deleted = delete_objects(handle, list_names(handle, prefix))
        total += deleted
        if deleted == 0:
            break
    return total


def read_chunks(blob: storage.Blob, chunk: int = CHUNK) -> Iterator[bytes]:
    """The object's bytes, `chunk` at a time."""
    with blob.open("rb", chunk_size=chunk) as source:
        while data := source.read(chunk):
            yield data


def signed_download_url(blob: storage.Blob, expires_in: timedelta, filename: str, credentials: Any) -> str:
    """A V4 signed GET URL that makes the browser save the object as `filename`.

    Credentials holding a private key (a service-account key, as in tests) sign locally. The runtime
    identity of Cloud Functions holds none: it signs through the IAM signBlob API with its access token
    (it needs roles/iam.serviceAccountTokenCreator on itself), so no key file exists anywhere.
    """
    common: dict[str, Any] = {
        "version": "v4",
        "expiration": expires_in,
        "method": "GET",
        "response_disposition": f'attachment; filename="{filename}"',
    }
    if isinstance(credentials, google.auth.credentials.Signing):
        return blob.generate_signed_url(credentials=credentials, **common)
    if not credentials.valid:
        credentials.refresh(google.auth.transport.requests.Request())
    return blob.generate_signed_url(
        service_account_email=getattr(credentials, "service_account_email", None),
        access_token=credentials.token,
        **common,
    )


@functools.cache
def default_credentials() -> Any:
    """The runtime identity (Application Default Credentials), for signing download URLs: looked up once per
    process; `signed_download_url` refreshes its token when it expires."""
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return credentials
