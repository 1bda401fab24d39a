"""Ingest: the catalogue decides what is kept; the reduced request is all that is published (P12, P23)."""

from __future__ import annotations

import json
from concurrent.futures import Future
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.errors import InvalidInput
from shared.http.errors import problem_for
from shared.telemetry.aggregator import cells_of
from shared.telemetry.catalogue import CATALOGUE, PRODUCT, WEB, describe
from shared.telemetry.ingest import IngestService, site_allowed
from shared.telemetry.model import TelemetryMessage, check_event
from shared.telemetry.privacy import CountryLookup

pytestmark = pytest.mark.policy("P12", "P23")

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
IP = "81.2.69.160"
COUNTRIES = CountryLookup()


class FakeSalts:
    def salt(self, day: date) -> bytes:
        return day.isoformat().encode() * 4


class Published(list[tuple[dict[str, Any], dict[str, str]]]):
    def __call__(self, payload: dict[str, Any], attrs: dict[str, str]) -> Future[str]:
        self.append((payload, attrs))
        done: Future[str] = Future()
        done.set_result("1")
        return done


def service(published: Published) -> IngestService:
    settings = Settings(
        project_id="demo-x",
        app_env="local",
        public_base_url="http://localhost",
        app_url="http://localhost",
        password_pepper=b"",
        totp_encryption_key=b"",
        telemetry_sites=("example.test", "*.sites.test"),
    )
    return IngestService(settings, published, FakeSalts(), COUNTRIES, lambda: NOW)  # type: ignore[arg-type]


def pageview(path: str = "/pricing", **extra: Any) -> dict[str, Any]:
    return {"name": "pageview", "url": f"https://example.test{path}", **extra}


def test_a_mixed_batch_keeps_its_valid_events_and_says_why_the_others_were_refused() -> None:
    published = Published()
    result = service(published).ingest(
        events=[
            pageview(referrer="https://www.google.com/search?q=x"),
            {"name": "no_such_event"},
            {"name": "cta_click", "url": "https://example.test/", "props": {"cta": 42}},
            "not an object",
            {"name": "cta_click", "url": "https://example.test/", "props": {"cta": "hero", "user_email": "a@b.c"}},
            {"name": "asset.uploaded"},
            {"name": "form_submit", "url": "https://example.test/contact", "props": {"form": "ada@example.com"}},
        ],
        ip=IP,
        user_agent=FIREFOX,
        site="example.test",
    )
    answer = result.public()
    assert (answer["accepted"], answer["rejected"], answer["dropped_properties"]) == (2, 5, 1)
    reasons = {e["index"]: e["reason"] for e in answer["errors"]}
    assert reasons == {
        1: "unknown-event",
        2: "invalid-property",
        3: "not-an-object",
        5: "wrong-stream",
        6: "personal-data",
    }
    ((payload, attrs),) = published
    assert attrs == {"stream": "web"}
    message = TelemetryMessage.model_validate(payload)
    assert [e.name for e in message.events] == ["pageview", "cta_click"]
    assert message.events[0].referrer == "google.com" and message.events[1].props == {"cta": "hero"}
    assert message.context.country == "GB" and message.context.browser == "Firefox"
    raw = json.dumps(payload)
    for forbidden in (IP, FIREFOX, "user_email", "ada@example.com", "search?q"):
        assert forbidden not in raw


def test_nothing_is_published_when_nothing_is_accepted() -> None:
    published = Published()
    result = service(published).ingest(events=[{"name": "nope"}], ip=IP, user_agent=FIREFOX, site="example.test")
    assert result.accepted == 0 and not published


@pytest.mark.parametrize("site", [None, "", "other.example", "evil.test", "EXAMPLE.TEST/x"])
def test_web_events_need_a_known_site(site: str | None) -> None:
    with pytest.raises(InvalidInput) as refused:
        service(Published()).ingest(events=[pageview()], ip=IP, user_agent=FIREFOX, site=site)
    assert problem_for(refused.value).status == 422


def test_site_patterns() -> None:
    assert site_allowed("a1.sites.test", ("*.sites.test",))
    assert not site_allowed("sites.test", ("*.sites.test",))
    assert site_allowed("example.test", ("example.test",))


def test_product_events_keep_the_account_id_and_hash_it_for_visitors() -> None:
    published = Published()
    result = service(published).ingest(
        events=[{"name": "report.exported", "props": {"format": "csv"}}, pageview()],
        ip=IP,
        user_agent=FIREFOX,
        account_id="acc_123",
    )
    assert (result.accepted, [e.reason for e in result.rejected]) == (1, ["wrong-stream"])
    message = TelemetryMessage.model_validate(published[0][0])
    assert message.stream == PRODUCT and message.site == "app" and message.account_id == "acc_123"
    assert message.visitor and "acc_123" not in message.visitor


def test_bots_are_published_apart_without_a_visitor() -> None:
    published = Published()
    service(published).ingest(events=[pageview()], ip=IP, user_agent="curl/8.5", site="example.test")
    message = TelemetryMessage.model_validate(published[0][0])
    assert message.context.bot and message.visitor is None
    assert cells_of(message, None).counts == {("bots", "curl"): 1}


def test_server_side_product_events() -> None:
    published = Published()
    result = service(published).track("acc_9", [{"name": "workflow.run", "props": {"steps": 3}}])
    assert result.accepted == 1
    message = TelemetryMessage.model_validate(published[0][0])
    assert message.context.browser == "server" and message.context.country == "unknown"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"name": "asset.uploaded", "props": {"count": "3"}}, "invalid-property"),
        ({"name": "asset.uploaded", "props": {"count": True}}, "invalid-property"),
        ({"name": "asset.uploaded", "props": {"count": -1}}, "invalid-property"),
        ({"name": "asset.uploaded", "props": {"source": "fax"}}, "invalid-property"),
        ({"name": "asset.tagged", "props": {"ai_suggested": "yes"}}, "invalid-property"),
        ({"name": "asset.uploaded", "props": "x"}, "invalid-props"),
        ({"name": "error.shown", "props": {"code": "+44 20 7946 0958"}}, "personal-data"),
        ({"name": "app.opened", "ts": "yesterday"}, "invalid-timestamp"),
        ({"name": "app.opened", "ts": (NOW - timedelta(days=8)).isoformat()}, "invalid-timestamp"),
        ({"name": 7}, "missing-name"),
    ],
)
def test_wrong_types_are_per_event_rejections(raw: dict[str, Any], reason: str) -> None:
    checked = check_event(0, raw, PRODUCT, "app", NOW)
    assert checked.event is None and checked.rejection is not None
    assert checked.rejection.reason == reason


def test_unknown_keys_are_dropped_and_counted_never_kept() -> None:
    checked = check_event(
        0,
        {"name": "search.performed", "user_id": "u1", "props": {"results": 3, "query": "ada lovelace"}},
        PRODUCT,
        "app",
        NOW,
    )
    assert checked.event is not None and checked.dropped == 2
    assert checked.event.props == {"results": 3}


def test_cells_of_a_pageview() -> None:
    published = Published()
    service(published).ingest(
        events=[pageview("/pricing?utm_source=news"), {"name": "signup_start", "props": {"plan": "pro"}}],
        ip=IP,
        user_agent=FIREFOX,
        site="example.test",
    )
    counts = cells_of(TelemetryMessage.model_validate(published[0][0]), None).counts
    assert counts[("visitors", "all")] == 2 and counts[("country", "GB")] == 2
    assert counts[("page", "/pricing")] == 1 and counts[("referrer", "(direct)")] == 1
    assert counts[("source", "news")] == 1 and counts[("prop", "signup_start.plan=pro")] == 1


def test_the_catalogue_is_described_for_clients() -> None:
    doc = describe()
    assert set(doc) == {WEB, PRODUCT}
    assert doc[WEB]["pageview"]["url"] == "required"
    assert all(spec.name in doc[spec.stream] for spec in CATALOGUE.values())


@pytest.mark.policy("P26", "P12")
def test_an_account_that_objected_to_analytics_has_nothing_published() -> None:
    published = Published()
    result = service(published).ingest(
        events=[{"name": "report.exported", "props": {"format": "csv"}}],
        ip=IP,
        user_agent=FIREFOX,
        account_id="acc_123",
        objected=True,
    )
    assert result.accepted == 0 and not published
    web = service(published).ingest(events=[pageview()], ip=IP, user_agent=FIREFOX, site="example.test", objected=True)
    assert web.accepted == 1 and published  # web analytics carry no account: an objection cannot reach them
