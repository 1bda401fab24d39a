"""The audit log (P10, P28): every staff access and admin call, in a tamper-evident hash chain.

Each entry carries the hash of the one before it; the head of the chain (sequence and hash) is
updated in the same transaction that writes the entry, and entries are created, never updated
(save the two retention steps below). Editing or deleting any entry breaks `verify()`. Entries name
staff and accounts by opaque id only; the account holder can read the entries about their account.

Retention (P27), run by the retention sweep (`shared/retention/sweep.py`):

- **The free-text reason** is kept `AUDIT_REASON_DAYS` (365 days: a year for the holder and the DPO
  to review an access and its stated reason). The hashed content holds only its SHA-256
  (`reason_digest`); the text is stored beside it, outside the hash, so `redact_reasons` can remove
  it (setting `reason_redacted_at`) without breaking the chain, while `verify()` still checks that a
  reason present hashes to its digest and that none was removed before its `reason_purge_at`.
- **The entry** is kept 6 years (the data map's `audit_log` period), then `prune` deletes it. Only a
  contiguous run from the start of the chain is deleted, and the chain's *tail* checkpoint
  (`audit_chain/tail = {sequence, prev_hash}`: the first kept entry and the hash its predecessor had)
  moves in the same transaction, so `verify()` starts from the tail and the chain stays whole.

Entries written before these fields existed (no `reason_digest`, no `purge_at`) are hashed as they
always were (reason included) and still verify; their reason is never redacted and they are never
pruned (see `prune`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import datamap

AUDIT_LOG = "audit_log"
AUDIT_CHAIN = "audit_chain"
GENESIS = "0" * 64
AUDIT_REASON_DAYS = 365  # the free-text reason: a year for the holder and the DPO to review an access
TAIL = "tail"  # audit_chain/tail: {sequence, prev_hash} of the first kept entry
REDACTION = "redaction"  # audit_chain/redaction: {through}: every reason due up to `through` is redacted
# Kept beside the hashed content of a new entry, outside its hash (redaction removes or sets them).
UNHASHED = frozenset({"hash", "reason", "reason_redacted_at"})
HASHED_DATES = ("reason_purge_at", "purge_at")


def _legacy_purge_at(entry: dict[str, Any]) -> datetime | None:
    """The purge date of an entry written before `purge_at` existed: its `at` plus the audit period."""
    try:
        at = datetime.fromisoformat(str(entry.get("at")))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)) + audit_retention()


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def _iso(when: Any) -> Any:
    """A datetime as UTC ISO text: the same before it is written and once read back from Firestore."""
    return when.astimezone(UTC).isoformat() if isinstance(when, datetime) else when


def reason_digest(reason: str) -> str:
    return hashlib.sha256(reason.encode("utf-8")).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    if "reason_digest" not in entry:  # an entry written before the reason digest: hashed as it always was
        return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()
    content = {k: _iso(v) if k in HASHED_DATES else v for k, v in entry.items() if k not in UNHASHED}
    return hashlib.sha256(_canonical(content)).hexdigest()


def audit_retention() -> timedelta:
    period = datamap.firestore_place(AUDIT_LOG).retention
    assert period is not None
    return period


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
        now = self.clock()
        at = now.isoformat()
        reason_purge_at = now + timedelta(days=AUDIT_REASON_DAYS)
        purge_at = now + audit_retention()

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
                "reason_digest": reason_digest(reason),
                "reason_purge_at": reason_purge_at,
                "purge_at": purge_at,
                "details": details or {},
                "prev_hash": (data or {}).get("hash", GENESIS),
            }
            entry["hash"] = entry_hash(entry)
            entry["reason"] = reason  # beside the hashed content: redacted after AUDIT_REASON_DAYS
            tx.create(self.db.collection(AUDIT_LOG).document(f"{sequence:012d}"), entry)
            tx.set(head_ref, {"sequence": sequence, "hash": entry["hash"]})
            return sequence

        return append(self.db.transaction())

    def entries_about(self, account_id: str, limit: int = 200) -> list[dict[str, Any]]:
        """What staff did with this account, newest first (shown to the account holder, P10); the reason
        is '' once redacted (after `AUDIT_REASON_DAYS`)."""
        docs = (
            self.db.collection(AUDIT_LOG)
            .where(filter=FieldFilter("target_account_id", "==", account_id))
            .order_by("sequence", direction=firestore.Query.DESCENDING)
            .limit(limit)
            .stream()
        )
        shown = []
        for d in docs:
            data = d.to_dict() or {}
            entry = {k: v for k, v in data.items() if k in {"sequence", "at", "action", "actor_roles"}}
            entry["reason"] = data.get("reason", "")
            shown.append(entry)
        return shown

    def _tail(self) -> dict[str, Any] | None:
        tail = self.db.collection(AUDIT_CHAIN).document(TAIL).get()
        return (tail.to_dict() or {}) if tail.exists else None

    def verify(self) -> list[AuditBreak]:
        """Walk the chain from its tail (or its first entry when nothing was ever pruned); every break found
        (an empty list means the log is intact)."""
        breaks: list[AuditBreak] = []
        tail = self._tail()
        previous = str(tail.get("prev_hash", "")) if tail else GENESIS
        expected = int(tail.get("sequence", -1)) if tail else 1
        now = self.clock()
        first = True
        for doc in self.db.collection(AUDIT_LOG).order_by("sequence").stream():
            entry = doc.to_dict() or {}
            sequence = int(entry.get("sequence", -1))
            if first and tail is not None:
                if sequence != expected or entry.get("prev_hash") != previous:
                    breaks.append(AuditBreak(sequence, "the first entry does not match the chain tail"))
                expected = sequence
            else:
                if sequence != expected:
                    breaks.append(AuditBreak(expected, f"entry {expected} missing (found {sequence})"))
                    expected = sequence
                if entry.get("prev_hash") != previous:
                    breaks.append(AuditBreak(sequence, "does not follow the entry before it"))
            first = False
            if entry_hash(entry) != entry.get("hash"):
                breaks.append(AuditBreak(sequence, "content altered"))
            if "reason_digest" in entry:
                problem = self._reason_problem(entry, now)
                if problem:
                    breaks.append(AuditBreak(sequence, problem))
            previous, expected = entry.get("hash", ""), expected + 1
        head = self.db.collection(AUDIT_CHAIN).document("head").get()
        if head.exists and (head.to_dict() or {}).get("hash") != previous:
            breaks.append(AuditBreak(expected - 1, "the chain head does not match the last entry"))
        return breaks

    @staticmethod
    def _reason_problem(entry: dict[str, Any], now: datetime) -> str | None:
        if "reason" in entry:
            return None if reason_digest(str(entry["reason"])) == entry["reason_digest"] else "reason altered"
        if entry.get("reason_redacted_at") is None:
            return "reason removed"
        due = entry.get("reason_purge_at")
        if not isinstance(due, datetime) or due > now:
            return "reason removed before its period ended"
        return None

    # -- retention (P27), run by the retention sweep ------------------------------------------------
    def redact_reasons(self, cutoff: datetime, limit: int, dry_run: bool) -> int:
        """Remove the free-text reason of every entry whose `reason_purge_at <= cutoff` (setting
        `reason_redacted_at`); how many were (or, dry run, would be) redacted. A range query page by page
        (`limit` a page), from the last run's high-water mark (`audit_chain/redaction`), so the cost follows
        what is due; an entry already redacted is not counted again (a run that died is finished by the
        next). Entries written before `reason_purge_at` existed are never matched."""
        mark_ref = self.db.collection(AUDIT_CHAIN).document(REDACTION)
        mark = mark_ref.get()
        through = (mark.to_dict() or {}).get("through") if mark.exists else None
        query = self.db.collection(AUDIT_LOG).where(filter=FieldFilter("reason_purge_at", "<=", cutoff))
        if through is not None:
            query = query.where(filter=FieldFilter("reason_purge_at", ">", through))
        query = query.order_by("reason_purge_at").order_by("__name__").limit(limit)
        now, count, last = self.clock(), 0, None
        while True:
            page = list((query.start_after(last) if last is not None else query).stream())
            due = [d for d in page if "reason" in (d.to_dict() or {})]
            count += len(due)
            if due and not dry_run:
                batch = self.db.batch()
                for doc in due:
                    batch.update(doc.reference, {"reason": firestore.DELETE_FIELD, "reason_redacted_at": now})
                batch.commit()
            if len(page) < limit:
                break
            last = page[-1]
        if not dry_run:
            mark_ref.set({"through": cutoff})
        return count

    def prune(self, cutoff: datetime, limit: int, dry_run: bool) -> int:
        """Delete the entries whose `purge_at <= cutoff` (the data map's 6 years); how many were (or, dry run,
        would be) deleted. Only a contiguous run from the start of the chain goes (never a hole), page by page
        (`limit` a page), and `audit_chain/tail` moves to the first kept entry in the same transaction as each
        page's deletes, so `verify()` keeps passing.

        An entry written before `purge_at` existed goes on the same period counted from its `at`, which its
        hash covers (its reason, also hashed, cannot be redacted before: it stays until the entry goes)."""
        tail_ref = self.db.collection(AUDIT_CHAIN).document(TAIL)
        tail = self._tail()
        expected = int(tail["sequence"]) if tail else 1
        count = 0
        while True:
            page = [
                d.to_dict() or {}
                for d in self.db.collection(AUDIT_LOG)
                .where(filter=FieldFilter("sequence", ">=", expected))
                .order_by("sequence")
                .limit(limit)
                .stream()
            ]
            run: list[dict[str, Any]] = []
            for entry in page:
                purge_at = entry.get("purge_at")
                if not isinstance(purge_at, datetime):  # written before purge_at existed: `at` (hashed) decides
                    purge_at = _legacy_purge_at(entry)
                if entry.get("sequence") != expected or purge_at is None or purge_at > cutoff:
                    break  # a hole (left for verify() to report), an entry without a date, or one still kept
                run.append(entry)
                expected += 1
            if run and not dry_run:
                self._prune_run(tail_ref, run)
            count += len(run)
            if len(run) < limit:
                return count

    def _prune_run(self, tail_ref: Any, run: list[dict[str, Any]]) -> None:
        first, last = run[0], run[-1]

        @firestore.transactional
        def cut(tx: firestore.Transaction) -> None:
            tail = tail_ref.get(transaction=tx)
            at = int((tail.to_dict() or {}).get("sequence", 1)) if tail.exists else 1
            if at != first["sequence"]:
                raise RuntimeError(f"the audit chain tail moved (at {at}, expected {first['sequence']})")
            for entry in run:
                tx.delete(self.db.collection(AUDIT_LOG).document(f"{entry['sequence']:012d}"))
            tx.set(tail_ref, {"sequence": last["sequence"] + 1, "prev_hash": last["hash"]})

        cut(self.db.transaction())
