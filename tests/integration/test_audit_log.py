"""The tamper-evident audit log (P10) on the Firestore emulator."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from shared.audit import AUDIT_CHAIN, AUDIT_LOG, AUDIT_REASON_DAYS, AuditLog
from shared.bootstrap import build_retention_sweep
from shared.config import Settings

pytestmark = pytest.mark.policy("P10")


@pytest.fixture
def audit(stack: Any) -> AuditLog:
    # A project of its own: the chain is global, and this test tampers with it.
    return AuditLog(firestore.Client(project="demo-audit-" + stack.env["GOOGLE_CLOUD_PROJECT"].split("-")[-1]))


def _wipe(audit: AuditLog) -> None:
    for name in (AUDIT_LOG, AUDIT_CHAIN):
        for doc in audit.db.collection(name).list_documents():
            doc.delete()


def test_entries_chain_and_any_edit_breaks_the_chain(audit: AuditLog) -> None:
    _wipe(audit)
    first = audit.record(
        "acc_staff", "privacy.erasure.start", target_account_id="acc_1", reason="DPO request", roles=["dpo"]
    )
    second = audit.record("acc_staff", "account.read", target_account_id="acc_2", reason="ticket 42", roles=["support"])
    third = audit.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 43", roles=["support"])
    assert (first, second, third) == (1, 2, 3)
    assert audit.verify() == []

    about = audit.entries_about("acc_1")
    assert [e["sequence"] for e in about] == [3, 1]
    assert about[0]["reason"] == "ticket 43" and "actor_id" not in about[0]

    entry = audit.db.collection(AUDIT_LOG).document(f"{2:012d}")
    entry.update({"reason": "nothing to see"})
    assert [b.sequence for b in audit.verify()] == [2]
    entry.delete()
    assert audit.verify(), "a deleted entry breaks the chain"
    _wipe(audit)


# -- retention (P10, P27): reasons redacted after a year, entries pruned after 6 years -------------------

T0 = datetime(2025, 2, 3, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
REASON_PERIOD = timedelta(days=AUDIT_REASON_DAYS)
ENTRY_PERIOD = timedelta(days=365 * 6)
PAGE = 300


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def timed(stack: Any, clock: Clock) -> AuditLog:
    # A project of its own per test: these tests move the clock years ahead and delete entries.
    return AuditLog(firestore.Client(project=f"demo-audit-{secrets.token_hex(4)}"), clock=clock)


def _doc(audit: AuditLog, sequence: int) -> Any:
    return audit.db.collection(AUDIT_LOG).document(f"{sequence:012d}")


def _tail(audit: AuditLog) -> dict[str, Any]:
    return audit.db.collection(AUDIT_CHAIN).document("tail").get().to_dict() or {}


def _problems(audit: AuditLog) -> list[tuple[int, str]]:
    return [(b.sequence, b.problem) for b in audit.verify()]


@pytest.mark.policy("P10", "P27")
def test_new_entries_keep_a_digest_and_two_purge_dates_and_a_changed_reason_is_detected(
    timed: AuditLog, clock: Clock
) -> None:
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 42", roles=["support"])
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 43", roles=["support"])
    assert timed.verify() == []
    stored = _doc(timed, 1).get().to_dict() or {}
    assert stored["reason"] == "ticket 42" and stored["at"] == T0.isoformat()
    assert stored["reason_digest"] == hashlib.sha256(b"ticket 42").hexdigest()
    assert stored["reason_purge_at"] == T0 + REASON_PERIOD and stored["purge_at"] == T0 + ENTRY_PERIOD

    _doc(timed, 2).update({"reason": "nothing to see"})
    assert _problems(timed) == [(2, "reason altered")]
    _doc(timed, 2).update({"reason": "ticket 43"})
    assert timed.verify() == []
    _doc(timed, 2).update({"reason": firestore.DELETE_FIELD})  # removed by hand, not redacted
    assert _problems(timed) == [(2, "reason removed")]
    _doc(timed, 2).update({"reason_redacted_at": T0})  # made to look redacted, before its year
    assert _problems(timed) == [(2, "reason removed before its period ended")]
    _doc(timed, 1).update({"reason_digest": hashlib.sha256(b"other").hexdigest(), "reason": "other"})
    assert (1, "content altered") in _problems(timed)


@pytest.mark.policy("P10", "P27")
def test_reasons_are_redacted_a_day_after_their_year_and_the_chain_still_verifies(
    timed: AuditLog, clock: Clock
) -> None:
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 42", roles=["support"])
    clock.now = T0 + 10 * DAY
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 43", roles=["support"])

    clock.now = T0 + REASON_PERIOD - DAY
    assert timed.redact_reasons(clock.now, PAGE, dry_run=False) == 0
    assert [e["reason"] for e in timed.entries_about("acc_1")] == ["ticket 43", "ticket 42"]

    clock.now = T0 + REASON_PERIOD + DAY
    assert timed.redact_reasons(clock.now, PAGE, dry_run=True) == 1
    assert (_doc(timed, 1).get().to_dict() or {})["reason"] == "ticket 42"  # a dry run changes nothing
    assert timed.redact_reasons(clock.now, PAGE, dry_run=False) == 1
    assert timed.redact_reasons(clock.now, PAGE, dry_run=False) == 0  # idempotent
    redacted = _doc(timed, 1).get().to_dict() or {}
    assert "reason" not in redacted and redacted["reason_redacted_at"] == clock.now
    assert timed.verify() == []
    assert [e["reason"] for e in timed.entries_about("acc_1")] == ["ticket 43", ""]

    clock.now = T0 + 10 * DAY + REASON_PERIOD + DAY
    assert timed.redact_reasons(clock.now, PAGE, dry_run=False) == 1
    assert [e["reason"] for e in timed.entries_about("acc_1")] == ["", ""]
    assert timed.verify() == []


@pytest.mark.policy("P10", "P27")
def test_entries_are_pruned_a_day_after_six_years_from_the_start_and_the_chain_still_verifies(
    timed: AuditLog, clock: Clock
) -> None:
    for i, day in enumerate((0, 1, 30, 40)):
        clock.now = T0 + day * DAY
        timed.record("acc_staff", "account.read", target_account_id="acc_1", reason=f"ticket {i}")

    clock.now = T0 + ENTRY_PERIOD - DAY
    assert timed.prune(clock.now, PAGE, dry_run=False) == 0
    clock.now = T0 + ENTRY_PERIOD + 2 * DAY  # entries 1 and 2 are due, 3 and 4 are not
    assert timed.prune(clock.now, PAGE, dry_run=True) == 2
    assert _doc(timed, 1).get().exists and not _tail(timed)  # a dry run changes nothing
    assert timed.prune(clock.now, 1, dry_run=False) == 2  # page by page
    assert not _doc(timed, 1).get().exists and not _doc(timed, 2).get().exists and _doc(timed, 3).get().exists
    second_hash = (_doc(timed, 3).get().to_dict() or {})["prev_hash"]
    assert _tail(timed) == {"sequence": 3, "prev_hash": second_hash}
    assert timed.verify() == []
    assert timed.prune(clock.now, PAGE, dry_run=False) == 0
    assert timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 4") == 5
    assert timed.verify() == []

    # A hole in the kept chain, or a first entry deleted behind the tail's back, is a break.
    fourth = _doc(timed, 4).get().to_dict() or {}
    _doc(timed, 4).delete()
    assert [s for s, _ in _problems(timed)] == [4, 5]
    _doc(timed, 4).set(fourth)
    third = _doc(timed, 3).get().to_dict() or {}
    _doc(timed, 3).delete()
    assert _problems(timed) == [(4, "the first entry does not match the chain tail")]
    _doc(timed, 3).set(third)
    assert timed.verify() == []

    # A tampered tail is a break; so is a tail removed (the chain then starts at entry 1, long pruned).
    tail_ref = timed.db.collection(AUDIT_CHAIN).document("tail")
    tail_ref.update({"prev_hash": "f" * 64})
    assert _problems(timed) == [(3, "the first entry does not match the chain tail")]
    tail_ref.update({"sequence": 4, "prev_hash": second_hash})
    assert _problems(timed) == [(3, "the first entry does not match the chain tail")]
    tail_ref.delete()
    assert _problems(timed)
    tail_ref.set({"sequence": 3, "prev_hash": second_hash})
    assert timed.verify() == []


@pytest.mark.policy("P10", "P27")
def test_pruning_never_leaves_a_hole(timed: AuditLog, clock: Clock) -> None:
    clock.now = T0 + 10 * DAY
    timed.record("acc_staff", "account.read", reason="later")  # 1: due later than 2 (a clock behind)
    clock.now = T0
    timed.record("acc_staff", "account.read", reason="earlier")  # 2
    clock.now = T0 + ENTRY_PERIOD + DAY
    assert timed.prune(clock.now, PAGE, dry_run=False) == 0  # 2 is due, but 1 before it is not
    assert _doc(timed, 2).get().exists and timed.verify() == []
    clock.now = T0 + 10 * DAY + ENTRY_PERIOD + DAY
    assert timed.prune(clock.now, PAGE, dry_run=False) == 2
    assert timed.verify() == []
    assert timed.record("acc_staff", "account.read", reason="new") == 3  # on an emptied log
    assert timed.verify() == []


def _legacy_entry(sequence: int, prev_hash: str, reason: str) -> dict[str, Any]:
    """An entry in the shape written before reasons were redacted: the hash covers the reason."""
    entry = {
        "sequence": sequence,
        "at": (T0 - 400 * DAY).isoformat(),
        "actor_id": "acc_staff",
        "actor_roles": ["support"],
        "action": "account.read",
        "target_account_id": "acc_1",
        "reason": reason,
        "details": {},
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
    return {**entry, "hash": hashlib.sha256(canonical).hexdigest()}


@pytest.mark.policy("P10", "P27")
def test_legacy_entries_still_verify_keep_their_reason_and_go_after_their_period(timed: AuditLog, clock: Clock) -> None:
    legacy = _legacy_entry(1, "0" * 64, "ticket 1")  # written 400 days before T0, hashed with its reason
    _doc(timed, 1).set(legacy)
    timed.db.collection(AUDIT_CHAIN).document("head").set({"sequence": 1, "hash": legacy["hash"]})
    assert timed.verify() == []
    assert timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 2") == 2
    assert timed.verify() == []
    _doc(timed, 1).update({"reason": "edited"})
    assert _problems(timed) == [(1, "content altered")]
    _doc(timed, 1).update({"reason": "ticket 1"})

    legacy_due = T0 - 400 * DAY + ENTRY_PERIOD  # its period counts from its own (hashed) `at`
    clock.now = legacy_due - DAY
    assert timed.redact_reasons(clock.now, PAGE, dry_run=False) == 1  # only the new entry's reason
    assert timed.prune(clock.now, PAGE, dry_run=False) == 0  # a day before: the legacy entry stays
    assert [e["reason"] for e in timed.entries_about("acc_1")] == ["", "ticket 1"]
    clock.now = legacy_due + DAY
    assert timed.prune(clock.now, PAGE, dry_run=True) == 1
    assert timed.prune(clock.now, PAGE, dry_run=False) == 1  # a day after: it goes, the newer one stays
    assert [e["reason"] for e in timed.entries_about("acc_1")] == [""]
    assert timed.verify() == []


@pytest.mark.policy("P10", "P27")
def test_the_retention_sweep_runs_both_audit_categories_on_the_emulator(timed: AuditLog, clock: Clock) -> None:
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 1")
    clock.now = T0 + 400 * DAY
    timed.record("acc_staff", "account.read", target_account_id="acc_1", reason="ticket 2")
    config = Settings(
        project_id=timed.db.project,
        app_env="local",
        public_base_url="http://localhost:8080",
        app_url="http://localhost:8080",
        password_pepper=b"",
        totp_encryption_key=b"",
    )
    only = ("audit_reasons", "audit_log")

    def run(now: datetime, dry_run: bool = False) -> Any:
        clock.now = now
        sweep = build_retention_sweep(config, db=timed.db, objects=None, privacy=lambda: None, mailer=None, clock=clock)
        return sweep.run(dry_run=dry_run, only=only)

    assert run(T0 + ENTRY_PERIOD + DAY, dry_run=True).counts == {"audit_reasons": 2, "audit_log": 1}
    assert (_doc(timed, 1).get().to_dict() or {})["reason"] == "ticket 1"
    report = run(T0 + ENTRY_PERIOD + DAY)
    assert report.counts == {"audit_reasons": 2, "audit_log": 1} and not report.failed
    assert not _doc(timed, 1).get().exists and timed.verify() == []
    assert [e["reason"] for e in timed.entries_about("acc_1")] == [""]
