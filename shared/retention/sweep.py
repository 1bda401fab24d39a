"""The retention sweep (P27): every place of the data map is emptied of what its period says is due.

One run, daily (Cloud Scheduler -> the `retention-sweep` function, or `python -m shared.cli
retention-sweep`), does, each category on its own so that one failing stops none of the others:

- **accounts**: accounts whose `purge_at` has passed are erased through the erasure pipeline (a
  privacy request of type `retention`, `PrivacyService.start_retention_erasure`); each is checked
  again against `shared/retention/policy.py` first, so a stale `purge_at` never erases an account
  used since. Accounts created before `purge_at` existed get it once (a bounded backfill per run).
- **account_warnings**: `retention_warning_days` before the purge, one mail per purge date says that
  signing in keeps the account.
- every Firestore place of `shared/datamap.py` with a `ttl_field`: documents whose TTL date has
  passed (Firestore's own TTL can lag 72 hours; the sweep is the guarantee).
- **privacy_requests**: closed requests (completed or cancelled) past the data map's period.
- **exports** and **telemetry_archive** in Cloud Storage, past their periods.
- **audit_reasons**: the free-text reasons of audit log entries, a year after the entry
  (`AuditLog.redact_reasons`); **audit_log**: audit log entries past the data map's 6 years, only a
  contiguous run from the start of the hash chain, its tail moved with them (`AuditLog.prune`).

Cost grows with what is due, not with what is stored: every read is a range query on a purge-date
field (`field <= now`), page by page, each page deleted before the next is read. Deletes are
idempotent, so a run that dies is finished by the next one; each category is held under a lease
(`shared/idempotency.py`), so two runs at once never work on the same category (the second skips it).
A dry run counts what would go and changes nothing. Each run ends with one summary log line, and an
alert line for each category that failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from shared import datamap
from shared.adapters.mail import Mail, Mailer
from shared.config import Settings
from shared.errors import NotFound
from shared.observability import get_logger
from shared.retention import policy
from shared.retention.ports import Doc, Lease, Objects, RetentionStore

log = get_logger(__name__)

ACCOUNTS = "accounts"
PAGE = 300  # documents per range query and per delete
BACKFILL_PAGE = 500
BACKFILL_PAGES_PER_RUN = 10  # at most 5,000 old accounts get their purge date per run
TELEMETRY_LOOKBACK_DAYS = 14  # days past the telemetry period listed again (a sweep missed for two weeks)
LEASE_SECONDS = 1800  # a category's lease: the function's timeout
CLOSED_REQUESTS = ("completed", "cancelled")
RETENTION_REASON = "P27: {months} months after the later of last use and cancellation"


class PrivacyRequests(Protocol):
    def start_retention_erasure(self, account_id: str, reason: str) -> dict[str, Any]: ...


class AuditRetention(Protocol):
    """The audit log's two retention steps (`shared/audit.py`): each returns how many entries were (or, dry
    run, would be) redacted or deleted."""

    def redact_reasons(self, cutoff: datetime, limit: int, dry_run: bool) -> int: ...

    def prune(self, cutoff: datetime, limit: int, dry_run: bool) -> int: ...


@dataclass
class SweepReport:
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": dict(self.counts),
            "failed": dict(self.failed),
            "skipped": dict(self.skipped),
            "duration_ms": self.duration_ms,
        }


def _plain(when: datetime | None) -> datetime | None:
    """A Firestore timestamp (DatetimeWithNanoseconds, which `replace` breaks) as a plain datetime."""
    if when is None:
        return None
    return datetime(
        when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond, tzinfo=when.tzinfo
    )


def ttl_places() -> list[datamap.FirestorePlace]:
    """Every Firestore place of the data map that declares a TTL field, in map order."""
    return [p for p in (*datamap.FIRESTORE, *datamap.SYSTEM) if p.ttl_field]


def warning_mail(to: str, first_name: str, purge_at: datetime, base_url: str) -> Mail:
    day = purge_at.astimezone(UTC).strftime("%d %B %Y")
    return Mail(
        to=to,
        subject=f"Your WizyVision account will be deleted on {day}",
        text=(
            f"Hello {first_name or ''},\n\n"
            f"Your WizyVision account has not been used for a long time. As our privacy policy says, an "
            f"account is deleted with all its data 12 months after its last use, so yours will be deleted "
            f"on {day}.\n\n"
            f"If you want to keep it, just sign in before that date: signing in keeps your account.\n"
            f"{base_url}\n\n"
            f"If you do not sign in, nothing else is needed: everything is erased on that date."
        ),
        category="transactional",
    )


class RetentionSweep:
    def __init__(
        self,
        *,
        settings: Settings,
        store: RetentionStore,
        objects: Objects | None,
        lease: Lease,
        privacy: Callable[[], PrivacyRequests],
        mailer: Mailer,
        clock: Callable[[], datetime],
        audit: AuditRetention | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.lease = lease
        self.privacy = privacy
        self.mailer = mailer
        self.clock = clock
        self.audit = audit

    # -- the run -------------------------------------------------------------------------------
    def run(self, dry_run: bool = False, only: tuple[str, ...] = ()) -> SweepReport:
        began = time.monotonic()
        report = SweepReport(dry_run=dry_run)
        for name, step in self.categories():
            if only and name not in only:
                continue
            token = None if dry_run else self.lease.acquire(f"retention-sweep:{name}", LEASE_SECONDS)
            if not dry_run and token is None:
                report.skipped[name] = "another sweep is running it"
                continue
            try:
                report.counts[name] = step(dry_run)
            except Exception as exc:  # one category failing stops none of the others
                report.failed[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.alert("retention sweep category failed", category=name, error=report.failed[name])
            finally:
                if token is not None:
                    self.lease.release(f"retention-sweep:{name}", token)
        report.duration_ms = int((time.monotonic() - began) * 1000)
        log.info(
            "retention sweep finished",
            dry_run=dry_run,
            # As [category, count] pairs: a category named like a secret (verification_tokens) would be redacted.
            counts=sorted(report.counts.items()),
            failed=sorted(report.failed),
            skipped=sorted(report.skipped),
            duration_ms=report.duration_ms,
        )
        return report

    def categories(self) -> list[tuple[str, Callable[[bool], int]]]:
        steps: list[tuple[str, Callable[[bool], int]]] = [
            ("accounts_backfill", self.backfill),
            ("account_warnings", self.warnings),
            ("accounts", self.accounts),
        ]
        for place in ttl_places():
            steps.append((place.collection, lambda dry, p=place: self.expired(p, dry)))
        steps.append(("privacy_requests", self.privacy_requests))
        steps.append(("exports", self.exports))
        steps.append(("telemetry_archive", self.telemetry_archive))
        steps.append(("audit_reasons", self.audit_reasons))
        steps.append(("audit_log", self.audit_log))
        return steps

    # -- accounts ------------------------------------------------------------------------------
    def _purge_dates(self, data: dict[str, Any]) -> tuple[datetime, datetime]:
        purge_at = policy.account_purge_at(
            _plain(data.get("last_active_at")),
            _plain(data.get("cancelled_at")),
            _plain(data["created_at"]),
            self.settings.account_retention_months,
        )
        return purge_at, policy.warning_at(purge_at, self.settings.retention_warning_days)

    def backfill(self, dry_run: bool) -> int:
        """Give `purge_at` and `purge_warning_at` to accounts made before those fields existed (once)."""
        state = self.store.state("backfill")
        if state.get("done"):
            return 0
        cursor, count = state.get("cursor"), 0
        for _ in range(BACKFILL_PAGES_PER_RUN):
            page = self.store.accounts_after(cursor, BACKFILL_PAGE)
            for doc in page:
                if doc.data.get("purge_at") is None and doc.data.get("created_at") is not None:
                    count += 1
                    if not dry_run:
                        purge_at, warn_at = self._purge_dates(doc.data)
                        self.store.set_account(doc.id, {"purge_at": purge_at, "purge_warning_at": warn_at})
            if page:
                cursor = page[-1].id
            if len(page) < BACKFILL_PAGE:
                if not dry_run:
                    self.store.set_state("backfill", {"done": True, "cursor": cursor})
                return count
        if not dry_run:
            self.store.set_state("backfill", {"done": False, "cursor": cursor})
        return count

    def warnings(self, dry_run: bool) -> int:
        """Mail, once per purge date, the accounts whose warning date has passed."""
        now = self.clock()
        if dry_run:
            return self.store.count_due(ACCOUNTS, "purge_warning_at", now)
        sent = 0
        for doc in self._due(ACCOUNTS, "purge_warning_at", now):
            account = self.store.claim_warning(doc.id, now)
            if account is None:
                continue
            try:
                self.mailer.send(
                    warning_mail(
                        account["email"], account.get("first_name", ""), account["purge_at"], self.settings.app_url
                    )
                )
            except Exception:
                # Not sent: due again at the next run.
                self.store.set_account(
                    doc.id, {"purge_warning_at": doc.data.get("purge_warning_at"), "purge_warning_sent_for": None}
                )
                raise
            sent += 1
            log.info("retention warning queued", account_id=doc.id, purge_at=account["purge_at"].isoformat())
        return sent

    def accounts(self, dry_run: bool) -> int:
        """Start the erasure of every account whose purge date has passed (and is still right)."""
        now = self.clock()
        privacy = None if dry_run else self.privacy()
        reason = RETENTION_REASON.format(months=self.settings.account_retention_months)
        started = 0
        for doc in self._due(ACCOUNTS, "purge_at", now):
            if not self._still_due(doc.data, now):
                if not dry_run:  # used since its purge date was written: correct it (the account is kept)
                    purge_at, warn_at = self._purge_dates(doc.data)
                    self.store.set_account(doc.id, {"purge_at": purge_at, "purge_warning_at": warn_at})
                continue
            if privacy is not None:
                try:
                    privacy.start_retention_erasure(doc.id, reason)
                except NotFound:  # erased between the query and now (a DPO erasure finished): nothing left to do
                    continue
            started += 1
        return started

    def _still_due(self, data: dict[str, Any], now: datetime) -> bool:
        if data.get("created_at") is None:
            return False
        purge_at, _ = self._purge_dates(data)
        return purge_at <= now

    def _due(self, collection: str, field_name: str, cutoff: datetime, *, group: bool = False) -> Iterator[Doc]:
        """Every document with `field <= cutoff`, page by page (a cursor: documents may stay or go)."""
        after: tuple[Any, str] | None = None
        while True:
            page = self.store.due(collection, field_name, cutoff, PAGE, group=group, after=after)
            yield from page
            if len(page) < PAGE:
                return
            after = (page[-1].data.get(field_name), page[-1].path)

    # -- Firestore places ------------------------------------------------------------------------
    def expired(self, place: datamap.FirestorePlace, dry_run: bool) -> int:
        assert place.ttl_field
        now = self.clock()
        if dry_run:
            return self.store.count_due(place.collection, place.ttl_field, now, group=place.group)
        deleted = 0
        while True:
            page = self.store.due(place.collection, place.ttl_field, now, PAGE, group=place.group)
            if page:
                deleted += self.store.delete([d.path for d in page])
            if len(page) < PAGE:
                return deleted

    def privacy_requests(self, dry_run: bool) -> int:
        """Closed requests past the data map's period (open ones have no `completed_at` and never match)."""
        period = datamap.firestore_place("privacy_requests").retention
        assert period is not None
        cutoff = self.clock() - period
        count, batch = 0, []
        for doc in self._due("privacy_requests", "completed_at", cutoff):
            if doc.data.get("status") not in CLOSED_REQUESTS:
                continue  # needs_attention: waiting for staff, kept
            count += 1
            batch.append(doc.path)
            if len(batch) >= PAGE and not dry_run:
                self.store.delete(batch)
                batch = []
        if batch and not dry_run:
            self.store.delete(batch)
        return count

    # -- Cloud Storage ---------------------------------------------------------------------------
    def exports(self, dry_run: bool) -> int:
        """Export archives older than `export_retention_days` (the bucket only ever holds about that many
        days: its lifecycle rule deletes the rest)."""
        if self.objects is None or not self.settings.exports_bucket:
            raise RuntimeError("EXPORTS_BUCKET is not configured")
        cutoff = self.clock() - timedelta(days=self.settings.export_retention_days)
        place = next(p for p in datamap.STORAGE if p.bucket_setting == "EXPORTS_BUCKET")
        root = place.prefix.split("{", 1)[0]
        names = [o.name for o in self.objects.list(self.settings.exports_bucket, root) if o.created <= cutoff]
        if names and not dry_run:
            self.objects.delete(self.settings.exports_bucket, names)
        return len(names)

    def telemetry_archive(self, dry_run: bool) -> int:
        """Raw product events whose day is past the period, listed day by day (`dt=<day>`), never the bucket."""
        if self.objects is None or not self.settings.telemetry_archive_bucket:
            raise RuntimeError("TELEMETRY_ARCHIVE_BUCKET is not configured")
        place = next(p for p in datamap.STORAGE if p.bucket_setting == "TELEMETRY_ARCHIVE_BUCKET")
        assert place.retention is not None
        root = place.prefix.split("{", 1)[0].rsplit("account=", 1)[0]
        last_due: date = (self.clock() - place.retention).date() - timedelta(days=1)
        count = 0
        for back in range(TELEMETRY_LOOKBACK_DAYS):
            day = (last_due - timedelta(days=back)).isoformat()
            marker = f"/dt={day}/"
            names = [
                o.name
                for o in self.objects.list(
                    self.settings.telemetry_archive_bucket, root, match_glob=f"{root}account=*/dt={day}/**"
                )
                if marker in o.name
            ]
            count += len(names)
            if names and not dry_run:
                self.objects.delete(self.settings.telemetry_archive_bucket, names)
        return count

    # -- the audit log ---------------------------------------------------------------------------
    def _audit(self) -> AuditRetention:
        if self.audit is None:
            raise RuntimeError("the audit log is not wired into the retention sweep")
        return self.audit

    def audit_reasons(self, dry_run: bool) -> int:
        """Free-text reasons of audit entries past their year (the entries and their hash chain stay)."""
        return self._audit().redact_reasons(self.clock(), PAGE, dry_run)

    def audit_log(self, dry_run: bool) -> int:
        """Audit entries past the data map's period, a contiguous run from the start of the chain."""
        return self._audit().prune(self.clock(), PAGE, dry_run)
