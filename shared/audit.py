"""The audit log (P10, P28): every staff access and admin call, in a tamper-evident hash chain.

Each entry carries the hash of the one before it; the head of the chain (sequence and hash) is
updated in the same transaction that writes the entry, and entries are created, never updated.
Editing or deleting any entry breaks `verify()`. Entries name staff and accounts by opaque id
only; the account holder can read the entries about their account.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

AUDIT_LOG = "audit_log"
AUDIT_CHAIN = "audit_chain"
GENESIS = "0" * 64


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True)
class AuditBreak:
    sequence: int
    problem: str


class AuditLog:
    def __init__(self, db: firestore.Client, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.clock = clock

    def record(
        self,
        actor_id: str,
        action: str,
        *,
        target_account_id: str | None = None,
        reason: str = "",
        roles: list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Append one entry; returns its sequence number."""
        head_ref = self.db.collection(AUDIT_CHAIN).document("head")
        at = self.clock().isoformat()

        @firestore.transactional
        def append(tx: firestore.Transaction) -> int:
            head = head_ref.get(transaction=tx)
            data = head.to_dict() if head.exists else {}
            sequence = int((data or {}).get("sequence", 0)) + 1
            entry = {
                "sequence": sequence,
                "at": at,
                "actor_id": actor_id,
                "actor_roles": sorted(roles or []),
                "action": action,
                "target_account_id": target_account_id,
                "reason": reason,
                "details": details or {},
                "prev_hash": (data or {}).get("hash", GENESIS),
            }
            entry["hash"] = entry_hash(entry)
            tx.create(self.db.collection(AUDIT_LOG).document(f"{sequence:012d}"), entry)
            tx.set(head_ref, {"sequence": sequence, "hash": entry["hash"]})
            return sequence

        return append(self.db.transaction())

    def entries_about(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """What staff did with this account, newest first (shown to the account holder, P10)."""
        docs = (
            self.db.collection(AUDIT_LOG)
            .where(filter=FieldFilter("target_account_id", "==", account_id))
            .order_by("sequence", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .stream()
        )
        return [
            {k: v for k, v in (d.to_dict() or {}).items() if k in {"sequence", "at", "action", "reason", "actor_roles"}}
            for d in docs
        ]

    def verify(self) -> list[AuditBreak]:
        """Walk the whole chain; every break found (an empty list means the log is intact)."""
        breaks: list[AuditBreak] = []
        previous, expected = GENESIS, 1
        for doc in self.db.collection(AUDIT_LOG).order_by("sequence").stream():
            entry = doc.to_dict() or {}
            sequence = int(entry.get("sequence", -1))
            if sequence != expected:
                breaks.append(AuditBreak(expected, f"entry {expected} missing (found {sequence})"))
                expected = sequence
            if entry.get("prev_hash") != previous:
                breaks.append(AuditBreak(sequence, "does not follow the entry before it"))
            if entry_hash(entry) != entry.get("hash"):
                breaks.append(AuditBreak(sequence, "content altered"))
            previous, expected = entry.get("hash", ""), expected + 1
        head = self.db.collection(AUDIT_CHAIN).document("head").get()
        if head.exists and (head.to_dict() or {}).get("hash") != (previous if expected > 1 else GENESIS):
            breaks.append(AuditBreak(expected - 1, "the chain head does not match the last entry"))
        return breaks
