"""The consent store: owns `marketing_consents` and `marketing_consent_history` (shared/datamap.py).

A change is one Firestore transaction: the current answer is replaced and the change appended to the
history, so the history always explains the current answer. `memory.py` is the in-memory twin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.consent.model import CONSENT_HISTORY, CONSENTS, Consent, ConsentChange

ACCOUNT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class ConsentStore(Protocol):
    def current(self, account_id: str) -> Consent: ...
    def record(self, change: ConsentChange) -> Consent: ...  # returns the answer before the change
    def history(self, account_id: str) -> list[ConsentChange]: ...  # oldest first
    def consenting(self) -> Iterator[str]: ...  # ids of the accounts whose current answer is yes


class FirestoreConsentStore:
    def __init__(self, db: firestore.Client) -> None:
        self.db = db

    def _ref(self, account_id: str) -> firestore.DocumentReference:
        return self.db.collection(CONSENTS).document(account_id)

    def current(self, account_id: str) -> Consent:
        if not ACCOUNT_ID.fullmatch(account_id or ""):
            return Consent(account_id)
        snap = self._ref(account_id).get()
        return Consent.from_doc(account_id, snap.to_dict() or {}) if snap.exists else Consent(account_id)

    def record(self, change: ConsentChange) -> Consent:
        if not ACCOUNT_ID.fullmatch(change.account_id or ""):
            raise ValueError("not an account id")
        ref = self._ref(change.account_id)
        entry = self.db.collection(CONSENT_HISTORY).document()
        after = Consent(change.account_id, change.marketing, change.at, change.source)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> Consent:
            snap = ref.get(transaction=tx)
            before = Consent.from_doc(change.account_id, snap.to_dict() or {}) if snap.exists else None
            tx.set(ref, after.to_doc())
            tx.create(entry, change.to_doc())
            return before or Consent(change.account_id)

        return run(self.db.transaction())

    def history(self, account_id: str) -> list[ConsentChange]:
        query = self.db.collection(CONSENT_HISTORY).where(filter=FieldFilter("account_id", "==", account_id))
        changes = [ConsentChange.from_doc(snap.to_dict() or {}) for snap in query.stream()]
        return sorted(changes, key=lambda c: c.at)

    def consenting(self) -> Iterator[str]:
        query = self.db.collection(CONSENTS).where(filter=FieldFilter("marketing", "==", True))
        for snap in query.stream():
            yield snap.id
