"""The Firebase Admin app: one per purpose and project, created on first use, shared by threads."""

from __future__ import annotations

import threading

import firebase_admin
import firebase_admin.credentials

_lock = threading.Lock()


def firebase_app(
    purpose: str, project_id: str, credential: firebase_admin.credentials.Base | None = None
) -> firebase_admin.App:
    """The named app `<purpose>-<project>` (honours FIREBASE_AUTH_EMULATOR_HOST locally)."""
    name = f"{purpose}-{project_id}"
    with _lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            return firebase_admin.initialize_app(credential, options={"projectId": project_id}, name=name)
