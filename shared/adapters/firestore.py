"""The Firestore client: one per process, created on first use (cheap cold start), thread-safe."""

from __future__ import annotations

import threading

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
