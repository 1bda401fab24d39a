"""The daily salts of the visitor hash (P23): random per UTC day, deleted 48 hours after the day began.

`telemetry_salts/<YYYY-MM-DD>` holds 32 random bytes and `expire_at` (a Firestore TTL field); the
salt of a day is created on first need (a transaction: two instances racing agree on one salt) and
every creation also deletes the salts whose time is up, so none outlives its 48 hours even if the
TTL sweep lags. Once a day's salt is gone, the hashes made with it cannot be recomputed from an IP
address and a user agent: no visitor can be followed from one day to the next.

The ingest keeps the salts of today and tomorrow in memory: in steady state the request path reads
nothing from Firestore; a salt is fetched once per instance and day, tomorrow's ahead of time in the
background.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.observability import get_logger

log = get_logger(__name__)

SALTS = "telemetry_salts"
SALT_LIFETIME = timedelta(hours=48)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


class DailySalts:
    def __init__(self, db: Callable[[], firestore.Client], clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[date, bytes] = {}
        self._prefetching = False

    def salt(self, day: date) -> bytes:
        """The salt of `day` (created if it does not exist yet)."""
        cached = self._cache.get(day)
        if cached is not None:
            self._prefetch(day + timedelta(days=1))
            return cached
        with self._lock:
            if day not in self._cache:
                self._cache[day] = self._fetch_or_create(day)
                self._forget_before(day - timedelta(days=1))
            value = self._cache[day]
        self._prefetch(day + timedelta(days=1))
        return value

    # -- internals ------------------------------------------------------------------------------
    def _prefetch(self, day: date) -> None:
        with self._lock:
            if day in self._cache or self._prefetching:
                return
            self._prefetching = True

        def run() -> None:
            try:
                value = self._fetch_or_create(day)
                with self._lock:
                    self._cache[day] = value
            except Exception as exc:  # next request tries again; the salt is then fetched inline
                log.warning("telemetry salt prefetch failed", error=type(exc).__name__)
            finally:
                self._prefetching = False

        threading.Thread(target=run, name="telemetry-salt-prefetch", daemon=True).start()

    def _forget_before(self, day: date) -> None:
        for known in [d for d in self._cache if d < day]:
            del self._cache[known]

    def _fetch_or_create(self, day: date) -> bytes:
        db = self._db()
        ref = db.collection(SALTS).document(day.isoformat())
        snap = ref.get()
        if snap.exists and (snap.to_dict() or {}).get("salt"):
            return bytes(snap.get("salt"))
        now = self._clock()

        @firestore.transactional
        def create(tx: firestore.Transaction) -> bytes:
            current = ref.get(transaction=tx)
            if current.exists and (current.to_dict() or {}).get("salt"):
                return bytes(current.get("salt"))
            value = secrets.token_bytes(32)
            tx.set(ref, {"salt": value, "day": day.isoformat(), "created_at": now, "expire_at": self.expiry(day)})
            return value

        value = create(db.transaction())
        self.purge(now)
        return value

    @staticmethod
    def expiry(day: date) -> datetime:
        return day_start(day) + SALT_LIFETIME

    def purge(self, now: datetime | None = None) -> int:
        """Delete every salt whose 48 hours are over; returns how many."""
        now = now or self._clock()
        db = self._db()
        expired = db.collection(SALTS).where(filter=FieldFilter("expire_at", "<=", now)).stream()
        deleted = 0
        for snap in expired:
            snap.reference.delete()
            deleted += 1
        return deleted
