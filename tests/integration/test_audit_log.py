"""The tamper-evident audit log (P10) on the Firestore emulator."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud import firestore

from shared.audit import AUDIT_CHAIN, AUDIT_LOG, AuditLog

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
