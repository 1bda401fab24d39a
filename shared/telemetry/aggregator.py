"""The aggregate use case (P12, P23): fold one `telemetry-events` message into daily counters.

Layout: `telemetry_counters/<stream>~<site>~<dimension>~<YYYY-MM-DD>~<part>`, one document per
dimension (event, country, browser, os, device, page, referrer, utm source/medium/campaign/term/
content, prop, plan, bots, visitors), day and part, holding a map `cells` of value ->
{n: events, r: HyperLogLog registers of the day's visitors}. Document ids sort by day inside a
dimension, so a report reads a date range with one id-range query (no composite index).

- One atomic batch per message, and no read: `create` of the message's marker
  (`telemetry_messages/<digest of the Pub/Sub message id>`), `Increment` of each counter and
  `Maximum` of each sketch register it touches (sketches.py). A redelivered message fails the
  marker's `create` precondition, so the whole batch is refused and nothing is counted twice:
  exactly-once counting without a transaction, and without the read locks that made concurrent
  folds abort each other.
- At most one write per touched document per message (all of a message's counters of a dimension
  and day share a document): a single-event message writes one document per dimension, a batch of
  events shares them.
- Hot documents are sharded: each message picks one of `TELEMETRY_COUNTER_SHARDS` parts at random;
  high-cardinality dimensions (pages, referrers, campaigns, props) are further split into BUCKETS
  by a hash of the value; the site's visitor sketch is split by register block (a visitor touches
  one of 16 documents). Reports add the parts up and merge their registers.
- Product messages are also archived, raw, to Cloud Storage (archive.py) before the counters; the
  object is named by the message id and created only if absent, so a redelivery adds nothing.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.observability import get_logger

if TYPE_CHECKING:
    from shared.identity.stores import AccountStore
from shared.telemetry import sketches
from shared.telemetry.catalogue import CATALOGUE, PLAN_TIERS, PRODUCT, WEB
from shared.telemetry.model import TelemetryMessage
from shared.telemetry.salts import day_start

log = get_logger(__name__)

COUNTERS = "telemetry_counters"
MESSAGES = "telemetry_messages"
COUNTER_RETENTION = timedelta(days=760)  # 25 months: this month and the same month last year, complete
MARKER_RETENTION = timedelta(days=8)  # longer than Pub/Sub can redeliver (7 days at most)
OTHER = "(other)"
DIRECT = "(direct)"
BUCKETS = 16
BUCKETED = frozenset({"page", "referrer", "prop", "campaign", "term", "content"})
VISITORS = "visitors"
BOTS = "bots"
ALL = "all"
VISITOR_BLOCK_BITS = 4  # the site's visitor registers are spread over 2^4 documents


def doc_id(stream: str, site: str, dim: str, day: str, part: str) -> str:
    return f"{stream}~{site}~{dim}~{day}~{part}"


def bucket_of(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=2).digest(), "big") % BUCKETS


@dataclass
class Cells:
    """The counters one message touches: (dimension, value) -> events."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, dim: str, value: str, n: int = 1) -> None:
        key = (dim, value or "(none)")
        self.counts[key] = self.counts.get(key, 0) + n


def cells_of(message: TelemetryMessage, plan: str | None) -> Cells:
    """Every counter a message increments (pure: no I/O)."""
    cells = Cells()
    context = message.context
    if context.bot:
        cells.add(BOTS, context.browser, len(message.events))
        return cells
    for event in message.events:
        cells.add(VISITORS, ALL)
        cells.add("event", event.name)
        cells.add("country", context.country)
        cells.add("browser", context.browser)
        cells.add("os", context.os)
        cells.add("device", context.device)
        spec = CATALOGUE.get(event.name)
        for key, value in sorted(event.props.items()):
            prop = spec.props.get(key) if spec else None
            if prop is not None and prop.aggregated:
                rendered = str(value).lower() if isinstance(value, bool) else str(value)
                cells.add("prop", f"{event.name}.{key}={rendered}")
        if message.stream == WEB and event.name == "pageview":
            cells.add("page", event.page or "/")
            cells.add("referrer", event.referrer or DIRECT)
            for key, value in event.utm.items():
                cells.add(key.removeprefix("utm_"), value)
        if message.stream == PRODUCT:
            cells.add("plan", plan or "free")
    return cells


@dataclass(frozen=True)
class FoldResult:
    applied: bool  # False: the message had been counted already (a redelivery)
    events: int
    writes: int  # Firestore document writes of the transaction (counters + marker)


class AccountLookup:
    """Whether an account still exists, and its plan tier (billing_accounts/<id>.plan), cached a minute.

    A product message can be delivered hours late (retries): if its account was erased (or cancelled)
    meanwhile, its events are still counted (the counters hold no account) but no longer archived (P11, P19).
    """

    BILLING_ACCOUNTS = "billing_accounts"

    def __init__(
        self,
        accounts: Callable[[], AccountStore],
        db: Callable[[], firestore.Client],
        clock: Callable[[], datetime],
        ttl: float = 60,
    ) -> None:
        self._accounts = accounts  # the account's status, through the identity store
        self._db = db
        self._clock = clock
        self._ttl = timedelta(seconds=ttl)
        self._cache: dict[str, tuple[datetime, bool, str]] = {}

    def lookup(self, account_id: str) -> tuple[bool, str]:
        """(exists, plan tier)."""
        now = self._clock()
        hit = self._cache.get(account_id)
        if hit and now - hit[0] < self._ttl:
            return hit[1], hit[2]
        status = self._accounts().status(account_id)
        # An account being erased is gone already, and a cancelled one is only kept until its purge
        # (P19): nothing more is archived under either (the counters, which hold no account, still count).
        exists = status is not None and status not in ("erasing", "cancelled")
        snap = self._db().collection(self.BILLING_ACCOUNTS).document(account_id).get(field_paths=["plan"])
        plan = (snap.to_dict() or {}).get("plan") if snap.exists else None
        tier = plan if plan in PLAN_TIERS else ("free" if plan is None else "other")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[account_id] = (now, exists, tier)
        return exists, tier


class Archive:
    """Where raw product events go (Cloud Storage in production; a fake in unit tests)."""

    def write(self, message_id: str, message: TelemetryMessage, plan: str) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class Aggregator:
    def __init__(
        self,
        db: firestore.Client,
        *,
        archive: Archive | None,
        accounts: AccountLookup | None,
        shards: int = 4,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.archive = archive
        self.accounts = accounts
        self.shards = max(1, shards)
        self.clock = clock
        self.rng = rng or random.Random()

    def marker(self, message_id: str) -> firestore.DocumentReference:
        return self.db.collection(MESSAGES).document(hashlib.sha256(message_id.encode()).hexdigest()[:40])

    def fold(self, message_id: str, message: TelemetryMessage) -> FoldResult:
        """Count `message` once: a redelivery fails the marker's precondition and changes nothing."""
        plan = None
        if message.stream == PRODUCT and message.account_id:
            exists, plan = self.accounts.lookup(message.account_id) if self.accounts else (True, "free")
            if self.archive is not None and exists:
                # Named by the message id and created only if absent: a redelivery adds nothing.
                self.archive.write(message_id, message, plan)
            elif not exists:
                log.info("telemetry archive skipped: the account no longer exists", events=len(message.events))
        updates = self.documents(message, cells_of(message, plan))
        now = self.clock()
        expire_at = day_start(message.day) + COUNTER_RETENTION
        batch = self.db.batch()
        batch.create(
            self.marker(message_id), {"at": now, "events": len(message.events), "expire_at": now + MARKER_RETENTION}
        )
        for name, (meta, cells) in updates.items():
            batch.set(
                self.db.collection(COUNTERS).document(name),
                {**meta, "expire_at": expire_at, "cells": cells},
                merge=True,
            )
        try:
            batch.commit()
        except gexc.AlreadyExists:
            log.info("telemetry redelivery ignored", stream=message.stream, events=len(message.events))
            return FoldResult(False, len(message.events), 0)
        writes = len(updates) + 1
        log.info("telemetry folded", stream=message.stream, events=len(message.events), writes=writes)
        return FoldResult(True, len(message.events), writes)

    def documents(self, message: TelemetryMessage, cells: Cells) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """Counter document id -> (its key fields, its `cells` update) for this message."""
        shard = self.rng.randrange(self.shards)
        day = message.day.isoformat()
        visitor = message.visitor
        docs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for (dim, value), n in sorted(cells.counts.items()):
            registers: dict[str, Any] = {}
            if dim == VISITORS:
                index, rank = sketches.register(visitor or "0" * 16, sketches.SITE_P)
                part = str(index >> (sketches.SITE_P - VISITOR_BLOCK_BITS))
                if visitor:
                    registers = {str(index): firestore.Maximum(rank)}
            else:
                part = f"{bucket_of(value)}-{shard}" if dim in BUCKETED else str(shard)
                if visitor and dim != BOTS:
                    index, rank = sketches.register(visitor, sketches.CELL_P)
                    registers = {str(index): firestore.Maximum(rank)}
            name = doc_id(message.stream, message.site, dim, day, part)
            if name not in docs:
                meta = {"stream": message.stream, "site": message.site, "dim": dim, "day": day, "part": part}
                docs[name] = (meta, {})
            cell: dict[str, Any] = {"n": firestore.Increment(n)}
            if registers:
                cell["r"] = registers
            docs[name][1][value] = cell
        return docs
