"""The whole retention cycle through the emulators (P19, P27): cancel, the warning, the purge.

The clock cannot move for the gateway, so the account travels instead: its cancellation is moved
back in time (11 months and 2 days, then 12 months and a day) and its purge dates recomputed by
`shared/retention/policy.py`, exactly as a cancellation that long ago would have written them. The
sweep then runs at the real time, through the real erasure pipeline (the gateway's privacy worker).
Only the account categories run, so no other test's data is touched.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.mail import message_text
from shared.bootstrap import build_retention_sweep
from shared.config import Settings
from shared.identity.model import ACCOUNT_EMAILS, ACCOUNTS
from shared.identity.tokens import email_key
from shared.privacy.model import DELETION_RECORDS
from shared.retention import policy
from tests.support import Client, Mailbox, poll, signin, signup_and_verify

pytestmark = pytest.mark.policy("P19", "P27")

ACCOUNT_CATEGORIES = ("account_warnings", "accounts")


def _travel(db: firestore.Client, account_id: str, cancelled_ago: timedelta, months: int) -> datetime:
    """Move the account's cancellation back by `cancelled_ago`; returns its new purge date."""
    cancelled_at = datetime.now(UTC) - cancelled_ago
    ref = db.collection(ACCOUNTS).document(account_id)
    created_at = ref.get().to_dict()["created_at"]
    purge_at = policy.account_purge_at(cancelled_at, cancelled_at, min(created_at, cancelled_at), months)
    ref.update(
        {
            "created_at": min(created_at, cancelled_at),
            "last_active_at": cancelled_at,
            "cancelled_at": cancelled_at,
            "purge_at": purge_at,
            "purge_warning_at": policy.warning_at(purge_at, 30),
        }
    )
    return purge_at


def test_cancel_then_the_warning_then_the_purge_with_a_deletion_record(
    client: Client, mailbox: Mailbox, stack: Any
) -> None:
    config = Settings.from_env(dict(stack.env))
    db = firestore.Client(project=config.project_id)
    email, password = signup_and_verify(client, mailbox)
    user = signin(client, email, password)
    account_id = db.collection(ACCOUNT_EMAILS).document(email_key(email)).get().to_dict()["account_id"]

    # 1. Cancel: the purge date is mailed.
    cancelled = user.post("/privacy/cancel-account", json={"current_password": password})
    assert cancelled.status_code == 200, cancelled.text
    assert mailbox.last(email, "cancelled")
    sweep = build_retention_sweep(config, db=db, objects=None)

    # 2. Eleven months (and two days) later: the warning mail, and the account is still there.
    purge_at = _travel(db, account_id, timedelta(days=334 + 2), config.account_retention_months)
    assert purge_at > datetime.now(UTC)
    report = sweep.run(only=ACCOUNT_CATEGORIES)
    assert not report.failed, report.failed
    warning = mailbox.last(email, "WizyVision account will be deleted")
    assert "signing in keeps" in message_text(warning).lower()
    assert db.collection(ACCOUNTS).document(account_id).get().exists
    sweep.run(only=ACCOUNT_CATEGORIES)  # a second run sends no second warning for the same date
    time.sleep(2)
    assert mailbox.count(email, "WizyVision account will be deleted") == 1

    # 3. Twelve months and a day after the cancellation: the sweep erases it through the pipeline.
    purge_at = _travel(db, account_id, timedelta(days=366 + 1), config.account_retention_months)
    assert purge_at < datetime.now(UTC)
    report = sweep.run(only=ACCOUNT_CATEGORIES)
    assert not report.failed and report.counts["accounts"] >= 1, report.as_dict()

    def record() -> dict[str, Any] | None:
        docs = db.collection(DELETION_RECORDS).where(filter=FieldFilter("account_id", "==", account_id)).stream()
        return next((d.to_dict() for d in docs), None)

    proof = poll(record, lambda r: r is not None)
    assert proof["type"] == "retention" and proof["requested_by"] == "retention-sweep"
    assert email not in str(proof)
    poll(lambda: db.collection(ACCOUNTS).document(account_id).get().exists, lambda exists: not exists)
    assert not db.collection(ACCOUNT_EMAILS).document(email_key(email)).get().exists
    assert client.post("/auth/signin", json={"email": email, "password": password}).status_code == 401
