"""The in-memory twin of `FirestoreConsentStore` (unit tests of the consent use cases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from shared.consent.model import Consent, ConsentChange
from shared.consent.stores import ACCOUNT_ID


class MemoryConsentStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.consents: dict[str, Consent] = {}
        self.changes: list[ConsentChange] = []

    def current(self, account_id: str) -> Consent:
        with self._lock:
            return self.consents.get(account_id) or Consent(account_id)

    def record(self, change: ConsentChange) -> Consent:
        if not ACCOUNT_ID.fullmatch(change.account_id or ""):
            raise ValueError("not an account id")
        with self._lock:
            before = self.consents.get(change.account_id) or Consent(change.account_id)
            self.consents[change.account_id] = Consent(change.account_id, change.marketing, change.at, change.source)
            self.changes.append(change)
            return before

    def history(self, account_id: str) -> list[ConsentChange]:
        with self._lock:
            return sorted((c for c in self.changes if c.account_id == account_id), key=lambda c: c.at)

    def consenting(self) -> Iterator[str]:
        with self._lock:
            ids = [account_id for account_id, consent in self.consents.items() if consent.marketing]
        yield from ids

    def forget(self, account_id: str) -> None:
        """What the erasure does to the Firestore collections (the data map's "delete")."""
        with self._lock:
            self.consents.pop(account_id, None)
            self.changes = [c for c in self.changes if c.account_id != account_id]
