"""Reports for staff (P12) that cannot single anyone out (P23).

Daily events and unique visitors, or a breakdown (features, countries, browsers, OS, devices,
pages, referrers, campaigns, props, plan tiers, bots) over a date range, from the daily counters.

The privacy rule: a breakdown cell is first judged per day, and any value seen by fewer than
THRESHOLD distinct visitors that day is folded into "other" before anything is added up; the
shown rows are then the top `limit`, the rest joins "other". So every number shown for a named
value is made of daily cells of at least 5 distinct visitors each (exact at that size: the
sketches are in their exact mode). Visitors of a multi-day range are visitor-days: the daily salt
makes yesterday's visitor a stranger today, by design.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from shared.audit import AuditLog
from shared.telemetry import sketches
from shared.telemetry.aggregator import BOTS, COUNTERS, OTHER, VISITORS, doc_id

THRESHOLD = 5
MAX_DAYS = 366
BREAKDOWNS = {
    "event": "event",
    "feature": "event",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "page": "page",
    "referrer": "referrer",
    "source": "source",
    "medium": "medium",
    "campaign": "campaign",
    "term": "term",
    "content": "content",
    "prop": "prop",
    "plan": "plan",
    "bots": BOTS,
}
PRODUCT_ONLY = frozenset({"feature", "plan"})
WEB_ONLY = frozenset({"page", "referrer", "source", "medium", "campaign", "term", "content"})
METRICS = ("events", "visitors")


@dataclass(frozen=True)
class ReportQuery:
    stream: str
    site: str
    start: date
    end: date
    by: str = "day"
    metric: str = "events"
    limit: int = 20

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


class ReportService:
    def __init__(
        self,
        db: firestore.Client,
        *,
        clock: Callable[[], datetime],
        default_site: str,
        audit: AuditLog | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.default_site = default_site
        self.audit = audit

    def today(self) -> date:
        return self.clock().date()

    def _docs(self, query: ReportQuery, dim: str) -> Iterator[dict[str, Any]]:
        """Every counter document of `dim` in the range (one id-range query)."""
        collection = self.db.collection(COUNTERS)
        low = doc_id(query.stream, query.site, dim, query.start.isoformat(), "")
        high = doc_id(query.stream, query.site, dim, query.end.isoformat(), "\uf8ff")
        found = (
            collection.where(filter=firestore.FieldFilter(FieldPath.document_id(), ">=", collection.document(low)))
            .where(filter=firestore.FieldFilter(FieldPath.document_id(), "<=", collection.document(high)))
            .stream()
        )
        for snap in found:
            yield snap.to_dict() or {}

    def report(self, query: ReportQuery, actor: Any = None) -> dict[str, Any]:
        """The report; a staff `actor` (an Account) is written to the audit log with what was asked (P10)."""
        if actor is not None and self.audit is not None:
            self.audit.record(
                actor.id,
                "telemetry.report",
                roles=list(getattr(actor, "roles", []) or []),
                details={
                    "stream": query.stream,
                    "site": query.site,
                    "from": query.start.isoformat(),
                    "to": query.end.isoformat(),
                    "by": query.by,
                },
            )
        head = {
            "stream": query.stream,
            "site": query.site,
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            "by": query.by,
            "metric": query.metric,
            "threshold": THRESHOLD,
        }
        if query.by == "day":
            return {**head, "rows": self._daily(query)}
        rows, other = self._breakdown(query)
        return {**head, "rows": rows, "other": other}

    # -- daily totals -------------------------------------------------------------------------
    def _daily(self, query: ReportQuery) -> list[dict[str, Any]]:
        events: dict[str, int] = defaultdict(int)
        bots: dict[str, int] = defaultdict(int)
        visitors: dict[str, list[sketches.Registers]] = defaultdict(list)
        for doc in self._docs(query, "event"):
            events[doc["day"]] += sum(int(c.get("n", 0)) for c in (doc.get("cells") or {}).values())
        for doc in self._docs(query, BOTS):
            bots[doc["day"]] += sum(int(c.get("n", 0)) for c in (doc.get("cells") or {}).values())
        for doc in self._docs(query, VISITORS):
            visitors[doc["day"]] += [sketches.load(c.get("r")) for c in (doc.get("cells") or {}).values()]
        return [
            {
                "day": day.isoformat(),
                "events": events.get(day.isoformat(), 0),
                "visitors": sketches.count(visitors.get(day.isoformat(), []), sketches.SITE_P),
                "bot_events": bots.get(day.isoformat(), 0),
            }
            for day in query.days()
        ]

    # -- breakdowns ---------------------------------------------------------------------------
    def _breakdown(self, query: ReportQuery) -> tuple[list[dict[str, Any]], dict[str, int]]:
        dim = BREAKDOWNS[query.by]
        # day -> value -> [events, registers]
        per_day: dict[str, dict[str, tuple[int, sketches.Registers]]] = defaultdict(dict)
        for doc in self._docs(query, dim):
            cells = per_day[doc["day"]]
            for value, cell in (doc.get("cells") or {}).items():
                n, registers = cells.get(value, (0, {}))
                cells[value] = (n + int(cell.get("n", 0)), sketches.merge([registers, sketches.load(cell.get("r"))]))
        totals: dict[str, dict[str, int]] = defaultdict(lambda: {"events": 0, "visitors": 0})
        other = {"events": 0, "visitors": 0}
        for cells in per_day.values():
            folded_events, folded = 0, []
            for value, (n, registers) in cells.items():
                visitors = sketches.count([registers], sketches.CELL_P)
                if dim == BOTS:  # bots are no people: nothing to protect, no visitors to count
                    totals[value]["events"] += n
                elif visitors < THRESHOLD or value == OTHER:
                    folded_events += n
                    folded.append(registers)
                else:
                    totals[value]["events"] += n
                    totals[value]["visitors"] += visitors
            other["events"] += folded_events
            other["visitors"] += sketches.count(folded, sketches.CELL_P)
        ranked = sorted(totals.items(), key=lambda item: (-item[1][query.metric], item[0]))
        rows = [{"value": value, **counts} for value, counts in ranked[: query.limit]]
        for _, counts in ranked[query.limit :]:
            other["events"] += counts["events"]
            other["visitors"] += counts["visitors"]
        return rows, other


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV (one header row); cells that a spreadsheet would run as a formula are quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if report["by"] == "day":
        writer.writerow(["day", "events", "visitors", "bot_events"])
        for row in report["rows"]:
            writer.writerow([row["day"], row["events"], row["visitors"], row["bot_events"]])
    else:
        writer.writerow([report["by"], "events", "visitors"])
        for row in report["rows"]:
            writer.writerow([_cell(row["value"]), row["events"], row["visitors"]])
        if report["other"]["events"]:
            writer.writerow(["other", report["other"]["events"], report["other"]["visitors"]])
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
