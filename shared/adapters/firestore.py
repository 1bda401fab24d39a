"""The Firestore client: one per process, created on first use (cheap cold start), thread-safe."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

_lock = threading.Lock()
_clients: dict[str, firestore.Client] = {}


def firestore_client(project_id: str) -> firestore.Client:
    """The client for `project_id`; honours FIRESTORE_EMULATOR_HOST locally."""
    client = _clients.get(project_id)
    if client is None:
        with _lock:
            client = _clients.get(project_id)
            if client is None:
                client = firestore.Client(project=project_id)
                _clients[project_id] = client
    return client


# Contention on a document (several writers at once) makes Firestore abort a transaction; the client
# retries at once, which under sustained contention (the emulator's lock timeouts, a burst of webhook
# events for one account) keeps failing. `transact` retries with jittered exponential backoff.
TX_ATTEMPTS = 8
TX_BACKOFF_SECONDS = 0.05
TX_BACKOFF_MAX_SECONDS = 2.0
T = TypeVar("T")


def contention(exc: BaseException) -> bool:
    """ABORTED, or the client's "Failed to commit transaction in N attempts" raised from it."""
    return isinstance(exc, gexc.Aborted) or isinstance(exc.__cause__, gexc.Aborted)


def transact(
    db: firestore.Client,
    fn: Callable[[firestore.Transaction], T],
    *,
    attempts: int = TX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn(transaction)` in a transaction (reads first, then writes); retry contention with backoff.

    `fn` may run more than once: it must only read through the transaction and write to it.
    """
    for attempt in range(1, attempts + 1):
        try:
            return firestore.transactional(fn)(db.transaction(max_attempts=1))
        except (ValueError, gexc.Aborted) as exc:
            if not contention(exc) or attempt == attempts:
                raise
        sleep(random.uniform(0, min(TX_BACKOFF_MAX_SECONDS, TX_BACKOFF_SECONDS * 2**attempt)))
    raise AssertionError("unreachable")
