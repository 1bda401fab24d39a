"""The retention sweep on in-memory twins, the clock driven across every boundary (P27)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared import datamap
from shared.config import Settings
from shared.retention import policy
from shared.retention.memory import MemoryLease, MemoryObjects, MemoryRetentionStore
from shared.retention.sweep import PAGE, RetentionSweep, ttl_places

pytestmark = pytest.mark.policy("P27")

T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SETTINGS = Settings(
    project_id="demo-retention",
    app_env="local",
    public_base_url="http://localhost:8080",
    app_url="http://localhost:8080",
    password_pepper=b"",
    totp_encryption_key=b"",
    exports_bucket="exports",
    telemetry_archive_bucket="telemetry",
)


class Privacy:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start_retention_erasure(self, account_id: str, reason: str) -> dict[str, Any]:
        self.started.append((account_id, reason))
        return {"request_id": f"req_{account_id}"}


class Mailer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Any] = []
        self.fail = fail

    def send(self, mail: Any) -> None:
        if self.fail:
            raise RuntimeError("outbox down")
        self.sent.append(mail)


class Audit:
    """The audit log's two retention steps on a list of entries (`shared/audit.py` on the emulator:
    tests/integration/test_audit_log.py)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []  # the chain, from its start
        self.calls: list[tuple[str, datetime, int, bool]] = []

    def add(self, at: datetime, reason: str) -> None:
        self.entries.append(
            {"reason": reason, "reason_purge_at": at + timedelta(days=365), "purge_at": at + timedelta(days=365 * 6)}
        )

    def redact_reasons(self, cutoff: datetime, limit: int, dry_run: bool) -> int:
        self.calls.append(("redact_reasons", cutoff, limit, dry_run))
        due = [e for e in self.entries if "reason" in e and e["reason_purge_at"] <= cutoff]
        for entry in [] if dry_run else due:
            del entry["reason"]
        return len(due)

    def prune(self, cutoff: datetime, limit: int, dry_run: bool) -> int:
        self.calls.append(("prune", cutoff, limit, dry_run))
        run = 0
        while run < len(self.entries) and self.entries[run]["purge_at"] <= cutoff:
            run += 1
        if not dry_run:
            del self.entries[:run]
        return run


class World:
    def __init__(self) -> None:
        self.store = MemoryRetentionStore()
        self.objects = MemoryObjects()
        self.lease = MemoryLease()
        self.privacy = Privacy()
        self.mailer = Mailer()
        self.audit = Audit()
        self.now = T0

    def sweep(self, settings: Settings = SETTINGS) -> RetentionSweep:
        return RetentionSweep(
            settings=settings,
            store=self.store,
            objects=self.objects,
            lease=self.lease,
            privacy=lambda: self.privacy,
            mailer=self.mailer,
            clock=lambda: self.now,
            audit=self.audit,
        )

    def account(self, account_id: str, last_active: datetime, **extra: Any) -> None:
        purge = policy.account_purge_at(last_active, extra.get("cancelled_at"), last_active, 12)
        data = {
            "email": f"{account_id}@example.com",
            "first_name": "Ada",
            "created_at": last_active,
            "last_active_at": last_active,
            "purge_at": purge,
            "purge_warning_at": policy.warning_at(purge, 30),
            **extra,
        }
        self.store.put("accounts", account_id, data)


@pytest.fixture
def world() -> World:
    return World()


def test_an_account_is_erased_a_day_after_its_period_and_not_a_day_before(world: World) -> None:
    world.account("acc_old", T0)
    purge = policy.add_months(T0, 12)
    world.now = purge - DAY
    world.sweep().run(only=("accounts",))
    assert world.privacy.started == []
    world.now = purge + DAY
    report = world.sweep().run(only=("accounts",))
    assert report.counts["accounts"] == 1
    assert world.privacy.started[0][0] == "acc_old" and "12 months" in world.privacy.started[0][1]


def test_an_account_used_since_its_purge_date_was_written_is_kept_and_corrected(world: World) -> None:
    world.account("acc_used", T0)
    purge = policy.add_months(T0, 12)
    world.store.get("accounts", "acc_used")["last_active_at"] = T0 + 100 * DAY  # touched, purge_at stale
    world.now = purge + DAY
    world.sweep().run(only=("accounts",))
    assert world.privacy.started == []
    assert world.store.get("accounts", "acc_used")["purge_at"] == policy.add_months(T0 + 100 * DAY, 12)


def test_cancellation_later_than_last_use_starts_the_period(world: World) -> None:
    cancelled = T0 + 60 * DAY
    world.account("acc_cancelled", T0, cancelled_at=cancelled)
    world.store.get("accounts", "acc_cancelled")["purge_at"] = policy.add_months(cancelled, 12)
    world.now = policy.add_months(T0, 12) + DAY
    world.sweep().run(only=("accounts",))
    assert world.privacy.started == []
    world.now = policy.add_months(cancelled, 12) + DAY
    world.sweep().run(only=("accounts",))
    assert [a for a, _ in world.privacy.started] == ["acc_cancelled"]


def test_the_warning_goes_30_days_before_once_per_purge_date(world: World) -> None:
    world.account("acc_warn", T0)
    purge = policy.add_months(T0, 12)
    world.now = purge - timedelta(days=31)
    world.sweep().run(only=("account_warnings",))
    assert world.mailer.sent == []
    world.now = purge - timedelta(days=29)
    world.sweep().run(only=("account_warnings",))
    world.sweep().run(only=("account_warnings",))
    assert len(world.mailer.sent) == 1
    mail = world.mailer.sent[0]
    assert mail.to == "acc_warn@example.com" and "sign in" in mail.text and mail.category == "transactional"
    # Signing in moves the purge date (identity writes both fields): a new warning is due a year later.
    used = world.now
    new_purge = policy.add_months(used, 12)
    world.store.get("accounts", "acc_warn").update(
        {"last_active_at": used, "purge_at": new_purge, "purge_warning_at": policy.warning_at(new_purge, 30)}
    )
    world.now = new_purge - timedelta(days=29)
    world.sweep().run(only=("account_warnings",))
    assert len(world.mailer.sent) == 2


def test_a_warning_that_cannot_be_queued_is_due_again_and_the_failure_alerts(world: World) -> None:
    world.account("acc_mailfail", T0)
    world.mailer.fail = True
    world.now = policy.add_months(T0, 12) - timedelta(days=10)
    report = world.sweep().run(only=("account_warnings", "sessions"))
    assert "account_warnings" in report.failed and "sessions" in report.counts
    world.mailer.fail = False
    world.sweep().run(only=("account_warnings",))
    assert len(world.mailer.sent) == 1


def test_old_accounts_get_their_purge_date_once_bounded_per_run(world: World) -> None:
    for i in range(3):
        world.store.put("accounts", f"acc_{i}", {"email": "x@example.com", "created_at": T0, "last_active_at": T0})
    world.now = T0 + DAY
    report = world.sweep().run(dry_run=True, only=("accounts_backfill",))
    assert report.counts["accounts_backfill"] == 3 and world.store.get("accounts", "acc_0").get("purge_at") is None
    world.sweep().run(only=("accounts_backfill",))
    assert world.store.get("accounts", "acc_2")["purge_at"] == policy.add_months(T0, 12)
    assert world.store.state("backfill")["done"] is True
    assert world.sweep().run(only=("accounts_backfill",)).counts["accounts_backfill"] == 0


@pytest.mark.parametrize("place", ttl_places(), ids=lambda p: p.collection)
def test_every_ttl_place_is_swept_a_day_after_its_date_and_not_before(world: World, place: Any) -> None:
    world.store.put(place.collection, "due", {place.ttl_field: T0})
    world.store.put(place.collection, "later", {place.ttl_field: T0 + 2 * DAY})
    world.now = T0 - DAY
    assert world.sweep().run(only=(place.collection,)).counts[place.collection] == 0
    world.now = T0 + DAY
    assert world.sweep().run(only=(place.collection,)).counts[place.collection] == 1
    assert world.store.get(place.collection, "due") is None
    assert world.store.get(place.collection, "later") is not None


def test_deletion_is_page_by_page_and_reads_only_what_is_due(world: World) -> None:
    for i in range(PAGE * 2 + 5):
        world.store.put("sessions", f"s{i:05d}", {"expires_at": T0 - DAY})
    for i in range(50):
        world.store.put("sessions", f"live{i}", {"expires_at": T0 + DAY})
    world.store.queries = 0
    assert world.sweep().run(only=("sessions",)).counts["sessions"] == PAGE * 2 + 5
    assert world.store.queries == 3
    assert len([p for p in world.store.docs if p.startswith("sessions/")]) == 50


def test_closed_privacy_requests_go_after_their_declared_period_open_ones_stay(world: World) -> None:
    period = datamap.firestore_place("privacy_requests").retention
    assert period == timedelta(days=365)
    world.store.put("privacy_requests", "done", {"status": "completed", "completed_at": T0})
    world.store.put("privacy_requests", "attention", {"status": "needs_attention", "completed_at": T0})
    world.store.put("privacy_requests", "open", {"status": "queued", "completed_at": None})
    world.store.put("deletion_records", "proof", {"completed_at": T0})
    world.now = T0 + period - DAY
    assert world.sweep().run(only=("privacy_requests",)).counts["privacy_requests"] == 0
    world.now = T0 + period + DAY
    assert world.sweep().run(only=("privacy_requests",)).counts["privacy_requests"] == 1
    assert world.store.get("privacy_requests", "done") is None
    assert world.store.get("privacy_requests", "attention") and world.store.get("privacy_requests", "open")
    world.sweep().run()
    assert world.store.get("deletion_records", "proof") is not None  # kept as proof, never swept


def test_exports_and_raw_telemetry_go_after_their_periods_listed_by_day(world: World) -> None:
    world.objects.put("exports", "exports/acc_1/req_old.zip", T0 - 8 * DAY)
    world.objects.put("exports", "exports/acc_1/req_new.zip", T0 - 6 * DAY)
    old_day = (T0 - 91 * DAY).date().isoformat()
    young_day = (T0 - 89 * DAY).date().isoformat()
    world.objects.put("telemetry", f"product-events/account=acc_1/dt={old_day}/m1.ndjson", T0)
    world.objects.put("telemetry", f"product-events/account=acc_2/dt={old_day}/m2.ndjson", T0)
    world.objects.put("telemetry", f"product-events/account=acc_1/dt={young_day}/m3.ndjson", T0)
    world.now = T0
    report = world.sweep().run(only=("exports", "telemetry_archive"))
    assert report.counts == {"exports": 1, "telemetry_archive": 2}
    assert sorted(world.objects.buckets["exports"]) == ["exports/acc_1/req_new.zip"]
    assert list(world.objects.buckets["telemetry"]) == [f"product-events/account=acc_1/dt={young_day}/m3.ndjson"]
    globs = [g for b, _, g in world.objects.listed if b == "telemetry"]
    assert globs and all(g and "/dt=" in g for g in globs)


def test_a_dry_run_counts_per_category_and_deletes_nothing(world: World) -> None:
    world.account("acc_due", T0)
    world.store.put("sessions", "s1", {"expires_at": T0})
    world.objects.put("exports", "exports/acc_1/r.zip", T0 - 30 * DAY)
    world.now = policy.add_months(T0, 12) + DAY
    before = dict(world.store.docs)
    report = world.sweep().run(dry_run=True)
    assert report.dry_run and report.counts["accounts"] == 1 and report.counts["sessions"] == 1
    assert report.counts["exports"] == 1 and report.failed == {}
    assert world.store.docs == before and world.privacy.started == [] and world.mailer.sent == []
    assert world.objects.buckets["exports"]


def test_a_category_held_by_another_run_is_skipped_not_failed(world: World) -> None:
    world.store.put("sessions", "s1", {"expires_at": T0 - DAY})
    token = world.lease.acquire("retention-sweep:sessions", 60)
    report = world.sweep().run(only=("sessions", "verification_tokens"))
    assert report.skipped == {"sessions": "another sweep is running it"} and not report.failed
    assert world.store.get("sessions", "s1") is not None
    world.lease.release("retention-sweep:sessions", token or "")
    assert world.sweep().run(only=("sessions",)).counts["sessions"] == 1


def test_a_failing_category_alerts_and_the_others_still_run(world: World, caplog: Any) -> None:
    world.store.put("sessions", "s1", {"expires_at": T0 - DAY})
    broken = replace(SETTINGS, exports_bucket="")
    report = world.sweep(broken).run()
    assert "exports" in report.failed and report.counts["sessions"] == 1
    assert world.lease.held == {}  # every lease given back


@pytest.mark.policy("P10", "P27")
def test_audit_reasons_go_a_day_after_their_year_and_entries_a_day_after_six_years(world: World) -> None:
    assert datamap.firestore_place("audit_log").retention == timedelta(days=365 * 6)
    world.audit.add(T0, "ticket 1")
    world.audit.add(T0 + 10 * DAY, "ticket 2")
    only = ("audit_reasons", "audit_log")
    world.now = T0 + timedelta(days=365) - DAY
    assert world.sweep().run(only=only).counts == {"audit_reasons": 0, "audit_log": 0}
    world.now = T0 + timedelta(days=365) + DAY
    assert world.sweep().run(only=only).counts == {"audit_reasons": 1, "audit_log": 0}
    assert [e.get("reason") for e in world.audit.entries] == [None, "ticket 2"]
    world.now = T0 + timedelta(days=365 * 6) - DAY
    assert world.sweep().run(only=only).counts == {"audit_reasons": 1, "audit_log": 0}
    world.now = T0 + timedelta(days=365 * 6) + DAY
    report = world.sweep().run(only=only)
    assert report.counts == {"audit_reasons": 0, "audit_log": 1} and not report.failed
    assert len(world.audit.entries) == 1
    assert {(name, limit, dry) for name, _, limit, dry in world.audit.calls} == {
        ("redact_reasons", PAGE, False),
        ("prune", PAGE, False),
    }
    assert all(
        cutoff in (T0 + timedelta(days=d) for d in (364, 366, 365 * 6 - 1, 365 * 6 + 1))
        for _, cutoff, _, _ in world.audit.calls
    )


@pytest.mark.policy("P10", "P27")
def test_a_dry_run_of_the_audit_categories_counts_and_changes_nothing(world: World) -> None:
    world.audit.add(T0, "ticket 1")
    world.now = T0 + timedelta(days=365 * 6) + DAY
    report = world.sweep().run(dry_run=True)
    assert report.counts["audit_reasons"] == 1 and report.counts["audit_log"] == 1 and not report.failed
    assert world.audit.entries == [
        {"reason": "ticket 1", "reason_purge_at": T0 + timedelta(days=365), "purge_at": T0 + timedelta(days=365 * 6)}
    ]
    assert all(dry for *_, dry in world.audit.calls)


def test_the_audit_categories_fail_loudly_when_the_audit_log_is_not_wired(world: World) -> None:
    sweep = world.sweep()
    sweep.audit = None
    report = sweep.run(only=("audit_reasons", "audit_log", "sessions"))
    assert set(report.failed) == {"audit_reasons", "audit_log"} and "sessions" in report.counts


def test_the_production_wiring_gives_the_sweep_the_audit_log(world: World) -> None:
    from shared.audit import AuditLog
    from shared.bootstrap import build_retention_sweep

    sweep = build_retention_sweep(
        SETTINGS,
        db=object(),
        store=world.store,
        objects=world.objects,
        lease=world.lease,
        privacy=lambda: world.privacy,
        mailer=world.mailer,
        clock=lambda: world.now,
    )
    assert isinstance(sweep.audit, AuditLog) and sweep.audit.db is not None
