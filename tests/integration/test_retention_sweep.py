"""The retention sweep on the Firestore emulator, in a project of its own (it deletes by age) (P27)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from shared.bootstrap import build_retention_sweep
from shared.config import Settings
from shared.retention import policy
from shared.retention.stores import FirestoreRetentionStore

pytestmark = pytest.mark.policy("P27")

T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Privacy:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.lock = threading.Lock()

    def start_retention_erasure(self, account_id: str, reason: str) -> dict[str, Any]:
        with self.lock:
            self.started.append(account_id)
        return {"request_id": "r"}


class Mailer:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, mail: Any) -> None:
        self.sent.append(mail)


@pytest.fixture
def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=f"retention-{secrets.token_hex(4)}")


def settings(project: str) -> Settings:
    return Settings(
        project_id=project,
        app_env="local",
        public_base_url="http://localhost:8080",
        app_url="http://localhost:8080",
        password_pepper=b"",
        totp_encryption_key=b"",
    )


def sweep(db: firestore.Client, now: datetime, privacy: Privacy, mailer: Mailer) -> Any:
    return build_retention_sweep(
        settings(db.project), db=db, objects=None, privacy=lambda: privacy, mailer=mailer, clock=lambda: now
    )


def seed(db: firestore.Client) -> None:
    purge = policy.add_months(T0, 12)
    for account_id, last in (("acc_due", T0), ("acc_active", T0 + 200 * DAY)):
        p = policy.add_months(last, 12)
        db.collection("accounts").document(account_id).set(
            {
                "email": f"{account_id}@example.com",
                "first_name": "Ada",
                "created_at": last,
                "last_active_at": last,
                "purge_at": p,
                "purge_warning_at": policy.warning_at(p, 30),
            }
        )
    db.collection("accounts").document("acc_legacy").set({"email": "l@example.com", "created_at": T0})
    writer = db.bulk_writer()
    for i in range(310):  # more than a page
        writer.set(db.collection("sessions").document(f"old{i}"), {"expires_at": purge - DAY, "account_id": "x"})
    writer.set(db.collection("sessions").document("live"), {"expires_at": purge + 2 * DAY, "account_id": "x"})
    writer.set(db.collection("security_events").document("ev"), {"expire_at": purge - DAY})
    writer.set(db.collection("privacy_requests").document("closed"), {"status": "completed", "completed_at": T0})
    writer.set(db.collection("deletion_records").document("proof"), {"completed_at": T0})
    writer.close()


def test_the_sweep_on_the_emulator_across_the_boundary(db: firestore.Client) -> None:
    seed(db)
    privacy, mailer = Privacy(), Mailer()
    purge = policy.add_months(T0, 12)
    only = ("accounts_backfill", "account_warnings", "accounts", "sessions", "security_events", "privacy_requests")

    before = sweep(db, purge - 2 * DAY, privacy, mailer).run(only=only)
    assert before.counts["accounts"] == 0 and before.counts["sessions"] == 0 and not before.failed
    assert before.counts["accounts_backfill"] == 1 and before.counts["account_warnings"] == 2  # acc_due, acc_legacy
    assert db.collection("accounts").document("acc_legacy").get().get("purge_at") == purge

    dry = sweep(db, purge + DAY, privacy, mailer).run(dry_run=True, only=only)
    assert dry.counts["sessions"] == 310 and dry.counts["accounts"] == 2 and privacy.started == []

    after = sweep(db, purge + DAY, privacy, mailer).run(only=only)
    assert after.counts["sessions"] == 310 and after.counts["security_events"] == 1 and not after.failed
    assert sorted(privacy.started) == ["acc_due", "acc_legacy"]  # never acc_active
    assert after.counts["privacy_requests"] == 1
    assert db.collection("sessions").document("live").get().exists
    assert db.collection("deletion_records").document("proof").get().exists
    assert len(mailer.sent) == 2  # one warning each, not one per run


def test_two_sweeps_at_once_fail_nothing_and_a_half_done_one_is_finished(db: firestore.Client) -> None:
    writer = db.bulk_writer()
    for i in range(700):
        writer.set(db.collection("verification_tokens").document(f"t{i}"), {"expires_at": T0 - DAY})
    writer.close()
    store = FirestoreRetentionStore(db)
    store.delete([d.path for d in store.due("verification_tokens", "expires_at", T0, 200)])  # a run that died

    reports: list[Any] = []
    runs = [
        threading.Thread(
            target=lambda: reports.append(
                sweep(db, T0, Privacy(), Mailer()).run(only=("verification_tokens", "sessions"))
            )
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert all(not r.failed for r in reports)
    assert sum(r.counts.get("verification_tokens", 0) for r in reports) == 500
    assert store.count_due("verification_tokens", "expires_at", T0) == 0
