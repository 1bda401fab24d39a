"""The aggregator and the reports on the Firestore and Storage emulators (P12, P23).

Exactly-once counting (a redelivered message changes nothing, concurrent folds lose nothing), the
"fewer than 5 visitors -> other" rule, the raw product archive, and the daily salts.
"""

from __future__ import annotations

import json
import random
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.adapters.storage import storage_client
from shared.config import Settings
from shared.telemetry import archive, sketches
from shared.telemetry.aggregator import BOTS, COUNTERS
from shared.telemetry.model import Context, TelemetryMessage, WireEvent
from shared.telemetry.privacy import visitor_hash
from shared.telemetry.reports import ReportQuery, to_csv
from shared.telemetry.salts import SALTS, DailySalts
from tests.visitors import DistinctRegisters

pytestmark = pytest.mark.policy("P12", "P23")

DAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(stack: Any) -> Settings:
    return Settings.from_env()


@pytest.fixture
def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


SALT = secrets.token_bytes(32)


def new_site() -> str:
    return f"t{secrets.token_hex(5)}.test"


VISITORS: dict[str, str] = {}
REGISTERS = DistinctRegisters()


def v(label: str) -> str:
    """A visitor hash, as the ingest makes it; each label has a sketch register of its own (tests/visitors.py)."""
    if label not in VISITORS:
        VISITORS[label] = REGISTERS.draw(lambda attempt: visitor_hash(SALT, label, str(attempt)))
    return VISITORS[label]


def web(site: str, visitor: str, *, country: str = "FR", page: str = "/", events: int = 1, bot: bool = False) -> Any:
    return TelemetryMessage(
        stream="web",
        site=site,
        day=DAY,
        received_at=NOW,
        visitor=None if bot else v(visitor),
        context=Context(country=country, browser="Firefox", os="Linux", device="desktop", bot=bot),
        events=[WireEvent(name="pageview", page=page, referrer="news.example") for _ in range(events)],
    )


def counters(db: firestore.Client, site: str, dim: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for snap in db.collection(COUNTERS).where(filter=firestore.FieldFilter("site", "==", site)).stream():
        doc = snap.to_dict() or {}
        if doc.get("dim") == dim:
            for value, cell in doc["cells"].items():
                found[value] = found.get(value, 0) + cell["n"]
    return found


def test_a_redelivered_message_is_not_counted_twice(settings: Settings, db: firestore.Client) -> None:
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, archive=None, clock=lambda: NOW)
    site = new_site()
    message = web(site, "v1", events=3)
    first = aggregator.fold("m-1-" + site, message)
    again = aggregator.fold("m-1-" + site, message)
    assert first.applied and not again.applied and again.writes == 0
    assert counters(db, site, "event") == {"pageview": 3}
    assert counters(db, site, "page") == {"/": 3}
    # One write per touched document (one per dimension here), plus the marker.
    assert first.writes == len({"visitors", "event", "country", "browser", "os", "device", "page", "referrer"}) + 1


def test_concurrent_folds_lose_nothing(settings: Settings, db: firestore.Client) -> None:
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, archive=None, clock=lambda: NOW, shards=2)
    site = new_site()
    messages = [(f"m-{i}-{site}", web(site, f"v{i % 7}", country="DE")) for i in range(24)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda item: aggregator.fold(*item), messages + messages[:6]))  # 6 redelivered
    assert counters(db, site, "country") == {"DE": 24}
    report = bootstrap.build_telemetry_report_service(settings, clock=lambda: NOW).report(
        ReportQuery(stream="web", site=site, start=DAY, end=DAY)
    )
    assert report["rows"] == [{"day": "2026-11-30", "events": 24, "visitors": 7, "bot_events": 0}]


def test_cells_under_five_visitors_are_folded_into_other(settings: Settings) -> None:
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, archive=None, clock=lambda: NOW)
    site = new_site()
    n = 0
    for visitor in range(6):  # six French visitors, two pageviews each
        for _ in range(2):
            n += 1
            aggregator.fold(f"fr-{n}-{site}", web(site, f"fr{visitor}", country="FR", page="/pricing"))
    for visitor in range(3):  # three from Iceland: under the threshold
        aggregator.fold(f"is-{visitor}-{site}", web(site, f"is{visitor}", country="IS", page="/jobs/zurich"))
    aggregator.fold(f"bot-{site}", web(site, "", bot=True, events=4))
    reports = bootstrap.build_telemetry_report_service(settings, clock=lambda: NOW)
    by_country = reports.report(ReportQuery(stream="web", site=site, start=DAY, end=DAY, by="country"))
    assert by_country["rows"] == [{"value": "FR", "events": 12, "visitors": 6}]
    assert by_country["other"] == {"events": 3, "visitors": 3}
    by_page = reports.report(ReportQuery(stream="web", site=site, start=DAY, end=DAY, by="page", metric="visitors"))
    assert [row["value"] for row in by_page["rows"]] == ["/pricing"], "a page seen by 3 people is not named"
    daily = reports.report(ReportQuery(stream="web", site=site, start=DAY - timedelta(days=1), end=DAY))
    assert daily["rows"][-1] == {"day": "2026-11-30", "events": 15, "visitors": 9, "bot_events": 4}
    assert daily["rows"][0]["events"] == 0
    bots = reports.report(ReportQuery(stream="web", site=site, start=DAY, end=DAY, by=BOTS))
    assert bots["rows"] == [{"value": "Firefox", "events": 4, "visitors": 0}]
    csv_text = to_csv(by_country)
    assert csv_text.splitlines() == ["country,events,visitors", "FR,12,6", "other,3,3"]


def product_message(account_id: str) -> TelemetryMessage:
    return TelemetryMessage(
        stream="product",
        site="app",
        day=DAY,
        received_at=NOW,
        visitor=v(account_id),
        account_id=account_id,
        context=Context(country="DE", browser="Chrome", os="Windows", device="desktop"),
        events=[WireEvent(name="report.exported", props={"format": "pdf"})],
    )


def test_product_events_are_archived_raw_with_the_plan(settings: Settings, db: firestore.Client) -> None:
    account_id = f"acc_{secrets.token_hex(6)}"
    db.collection("accounts").document(account_id).set({"status": "active"})
    db.collection("billing_accounts").document(account_id).set({"plan": "enterprise"})
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, clock=lambda: NOW)
    message = product_message(account_id)
    message_id = str(random.randrange(10**15))
    assert aggregator.fold(message_id, message).applied
    assert aggregator.fold(message_id, message).applied is False
    bucket = storage_client(settings.project_id).bucket(settings.telemetry_archive_bucket)
    blobs = list(bucket.list_blobs(prefix=f"product-events/account={account_id}/"))
    assert [b.name for b in blobs] == [archive.object_name("2026-11-30", account_id, message_id)]
    (line,) = [json.loads(x) for x in blobs[0].download_as_bytes().splitlines()]
    assert line["account_id"] == account_id and line["plan"] == "enterprise" and line["event"] == "report.exported"
    assert counters(db, "app", "plan").get("enterprise", 0) >= 1
    for blob in blobs:
        blob.delete()
    db.collection("billing_accounts").document(account_id).delete()
    db.collection("accounts").document(account_id).delete()


@pytest.mark.policy("P11")
@pytest.mark.parametrize("account_status", [None, "erasing"], ids=["erased", "being-erased"])
def test_a_late_message_of_an_erased_account_is_counted_but_not_archived(
    settings: Settings, db: firestore.Client, account_status: str | None
) -> None:
    account_id = f"acc_{secrets.token_hex(6)}"  # no account document: erased (or never existed)
    if account_status is not None:
        db.collection("accounts").document(account_id).set({"status": account_status})
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, clock=lambda: NOW)
    folded = aggregator.fold(str(random.randrange(10**15)), product_message(account_id))
    assert folded.applied and folded.events == 1, "counted (the counters hold no account)"
    bucket = storage_client(settings.project_id).bucket(settings.telemetry_archive_bucket)
    assert not list(bucket.list_blobs(prefix=f"product-events/account={account_id}/")), "not archived (P11)"
    db.collection("accounts").document(account_id).delete()


def test_daily_salts_are_shared_random_and_expire_after_48_hours(stack: Any) -> None:
    # A project of its own on the emulator: purging "every salt whose 48 hours are over" from years ahead
    # would otherwise delete today's salt under the gateway's running ingest.
    db = firestore.Client(project=f"salts-{secrets.token_hex(4)}")
    far = date(2031, 1, 1) + timedelta(days=random.randrange(3000))
    clock_now = datetime.combine(far, datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)
    one = DailySalts(lambda: db, lambda: clock_now)
    two = DailySalts(lambda: db, lambda: clock_now)
    assert one.salt(far) == two.salt(far) and len(one.salt(far)) == 32
    assert one.salt(far) != one.salt(far + timedelta(days=1))
    doc = db.collection(SALTS).document(far.isoformat()).get().to_dict() or {}
    assert doc["expire_at"] == datetime.combine(far, datetime.min.time(), tzinfo=UTC) + timedelta(hours=48)
    later = DailySalts(lambda: db, lambda: clock_now + timedelta(days=3))
    later.salt(far + timedelta(days=3))  # creating a new salt purges those whose 48 hours are over
    assert not db.collection(SALTS).document(far.isoformat()).get().exists
    later.purge(clock_now + timedelta(days=30))


def test_a_sketch_of_the_site_merges_its_shards(settings: Settings) -> None:
    aggregator = bootstrap.build_telemetry_aggregate_service(settings, archive=None, clock=lambda: NOW, shards=4)
    site = new_site()
    for i in range(60):
        aggregator.fold(f"s-{i}-{site}", web(site, f"visitor-{i % 40}"))
    reports = bootstrap.build_telemetry_report_service(settings, clock=lambda: NOW)
    daily = reports.report(ReportQuery(stream="web", site=site, start=DAY, end=DAY))
    assert daily["rows"][0]["visitors"] == 40
    assert sketches.SITE_P >= 14
