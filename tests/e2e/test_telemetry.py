"""Telemetry through the gateway: HTTPS -> Pub/Sub -> counters -> staff reports (P12, P23)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.e2e.telemetry_support import (
    AGENTS,
    COUNTRY_IPS,
    SiteVisitors,
    counters,
    new_site,
    push,
    send,
    site_registers,
    staff,
    visitor,
    wait_for,
)
from tests.support import Client, Mailbox, signin, signup_and_verify

pytestmark = pytest.mark.policy("P12")


def pageview(site: str, path: str = "/", **extra: Any) -> dict[str, Any]:
    return {"name": "pageview", "url": f"https://{site}{path}", **extra}


@pytest.mark.policy("P23")
def test_web_analytics_counts_countries_browsers_pages_and_bots(stack: Any) -> None:
    site = new_site()
    visitors = SiteVisitors(stack, site)
    sent = 0
    for country, ips in COUNTRY_IPS.items():
        for ip in ips:
            for browser in ("Firefox", "Chrome", "Mobile Safari"):
                client = visitors.visitor(ip, AGENTS[browser])
                response = send(
                    client,
                    site,
                    [
                        pageview(site, f"/pricing?email=ada%40example.com&utm_source=news-{country}"),
                        {"name": "cta_click", "url": f"https://{site}/pricing", "props": {"cta": "hero"}},
                    ],
                )
                assert response.status_code == 202, response.text
                assert response.json()["accepted"] == 2
                sent += 2
    bot = visitor(stack.gateway_url, "8.8.8.8", AGENTS["Googlebot"])
    assert send(bot, site, [pageview(site, "/")]).json()["accepted"] == 1

    wait_for(lambda: sum(counters(stack, "web", site, "event").values()) == sent, what="the events to be counted")
    wait_for(lambda: counters(stack, "web", site, "bots") == {"Googlebot": 1}, what="the bot")
    countries = counters(stack, "web", site, "country")
    assert countries == {country: 6 * len(ips) for country, ips in COUNTRY_IPS.items()}
    assert counters(stack, "web", site, "browser") == {"Firefox": 20, "Chrome": 20, "Mobile Safari": 20}
    assert counters(stack, "web", site, "device") == {"desktop": 40, "mobile": 20}
    assert counters(stack, "web", site, "page") == {"/pricing": 30}
    assert counters(stack, "web", site, "source")["news-GB"] == 9
    # The site's sketch holds the registers of these 30 visitors, as the ingest hashed them, and no other.
    assert site_registers(stack, site) == visitors.registers()

    support = staff(stack, ["support"])
    report = support.get("/telemetry/reports", params={"site": site, "by": "country", "metric": "visitors"})
    assert report.status_code == 200, report.text
    rows = {row["value"]: row for row in report.json()["rows"]}
    # 9 visitors (3 addresses x 3 browsers) in GB and US; Brazil and Romania have 6 each.
    assert rows["GB"] == {"value": "GB", "events": 18, "visitors": 9}
    assert set(rows) == {"GB", "US", "BR", "RO"}
    daily = support.get("/telemetry/reports", params={"site": site}).json()["rows"]
    today = datetime.now(UTC).date().isoformat()
    assert {"day": today, "events": sent, "visitors": 30, "bot_events": 1} in daily


@pytest.mark.policy("P23")
def test_a_breakdown_cell_under_five_visitors_is_folded_into_other(stack: Any) -> None:
    site = new_site()
    visitors = SiteVisitors(stack, site)
    for i in range(5):
        client = visitors.visitor(COUNTRY_IPS["GB"][i % 3], f"{AGENTS['Firefox']} n{i}")
        assert send(client, site, [pageview(site, "/popular")]).status_code == 202
    rare = visitors.visitor("200.147.67.142", AGENTS["Chrome"])
    assert send(rare, site, [pageview(site, "/careers/zurich-office")]).status_code == 202
    wait_for(lambda: sum(counters(stack, "web", site, "page").values()) == 6, what="the pageviews")
    support = staff(stack, ["admin"])
    pages = support.get("/telemetry/reports", params={"site": site, "by": "page"}).json()
    assert [row["value"] for row in pages["rows"]] == ["/popular"]
    assert pages["other"] == {"events": 1, "visitors": 1}
    csv = support.get("/telemetry/reports", params={"site": site, "by": "country", "format": "csv"})
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines() == ["country,events,visitors", "GB,5,5", "other,1,1"]
    assert "attachment" in csv.headers["Content-Disposition"]


def test_product_events_are_counted_per_feature_and_archived_with_the_account(
    stack: Any, client: Client, mailbox: Mailbox
) -> None:
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    account_id = session.get("/auth/me").json()["id"]
    app = visitor(stack.gateway_url, "81.2.69.160", AGENTS["Chrome"], token=session.token)
    response = send(
        app,
        None,
        [
            {"name": "report.exported", "props": {"format": "pdf"}},
            {"name": "asset.uploaded", "props": {"count": 12, "source": "camera", "camera_serial": "X1"}},
            {"name": "pageview", "url": "https://x.test/"},
        ],
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["stream"], answer["accepted"], answer["dropped_properties"]) == ("product", 2, 1)
    assert answer["errors"] == [
        {"index": 2, "reason": "wrong-stream", "detail": "a web analytics event is sent without a session token"}
    ]
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    bucket = stack.env["TELEMETRY_ARCHIVE_BUCKET"]

    def archived() -> list[dict[str, Any]]:
        blobs = list(gcs.list_blobs(bucket, prefix=f"product-events/account={account_id}/"))
        return [json.loads(line) for blob in blobs for line in blob.download_as_bytes().splitlines()]

    lines = wait_for(archived, what="the archive")
    assert sorted(line["event"] for line in lines) == ["asset.uploaded", "report.exported"]
    uploaded = next(line for line in lines if line["event"] == "asset.uploaded")
    assert uploaded["props"] == {"count": 12, "source": "camera"}
    assert uploaded["account_id"] == account_id and uploaded["plan"] == "free" and uploaded["country"] == "GB"
    assert not {"ip", "user_agent", "email"} & set(uploaded)

    support = staff(stack, ["support"])
    features = support.get("/telemetry/reports", params={"by": "feature", "limit": 1000}).json()
    assert features["stream"] == "product" and features["site"] == "app"


def test_an_invalid_session_token_is_refused_not_downgraded(stack: Any) -> None:
    client = visitor(stack.gateway_url, "8.8.4.4", AGENTS["Firefox"], token="not-a-session")
    response = send(client, new_site(), [pageview("x.test")])
    assert response.status_code == 401


@pytest.mark.policy("P23")
def test_a_redelivered_message_leaves_the_counters_unchanged(stack: Any) -> None:
    site = new_site()
    payload = {
        "stream": "web",
        "site": site,
        "day": datetime.now(UTC).date().isoformat(),
        "received_at": datetime.now(UTC).isoformat(),
        "visitor": secrets.token_hex(16),
        "context": {"country": "GB", "browser": "Firefox", "os": "Linux", "device": "desktop"},
        "events": [{"name": "pageview", "page": "/"}, {"name": "pageview", "page": "/docs"}],
    }
    message_id = str(secrets.randbelow(10**15))
    for _ in range(3):
        assert push(stack, message_id, payload).status_code in (200, 204)
    assert counters(stack, "web", site, "page") == {"/": 1, "/docs": 1}
    assert push(stack, message_id + "1", payload).status_code in (200, 204)  # another message does count
    assert counters(stack, "web", site, "page") == {"/": 2, "/docs": 2}


def test_a_poison_message_is_acknowledged(stack: Any) -> None:
    response = push(stack, str(secrets.randbelow(10**15)), {"stream": "web", "site": "x.test", "nonsense": True})
    assert response.status_code in (200, 204)


def test_limits_and_bad_input_get_clear_answers_never_500(stack: Any) -> None:
    site = new_site()
    client = visitor(stack.gateway_url, "8.8.8.8", AGENTS["Firefox"])
    too_many = send(client, site, [pageview(site)] * 501)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "events"
    big = client.post(
        "/telemetry/events",
        data=b'{"site":"' + site.encode() + b'","events":[' + b'{"name":"pageview"},' * 110_000 + b"{}]}",
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413 and big.json()["type"].endswith("/body-too-large")
    mixed = send(
        client,
        site,
        [
            pageview(site, "/ok"),
            {"name": "pageview"},
            {"name": "no.such.event"},
            {"name": "signup_start", "url": f"https://{site}/", "props": {"plan": 3}},
            {"name": "download", "url": f"https://{site}/", "props": {"file": ["a"]}},
            {"name": "pageview", "url": "https://elsewhere.test/"},
            17,
            {"name": "cta_click", "url": f"https://{site}/", "props": {"cta": "hero", "utm": {"nested": 1}}},
        ],
    )
    assert mixed.status_code == 202, mixed.text
    answer = mixed.json()
    assert (answer["accepted"], answer["rejected"], answer["dropped_properties"]) == (2, 6, 1)
    assert [e["reason"] for e in answer["errors"]] == [
        "invalid-url",
        "unknown-event",
        "invalid-property",
        "invalid-property",
        "url-not-on-site",
        "not-an-object",
    ]
    wait_for(lambda: counters(stack, "web", site, "event") == {"pageview": 1, "cta_click": 1}, what="valid events")
    for body, status in (
        ({"site": "unknown.example", "events": [pageview("unknown.example")]}, 422),
        ({"events": [pageview(site)]}, 422),
        ({"site": site, "events": []}, 422),
        ({"site": site, "events": "pageview"}, 422),
        ({"site": site, "events": [pageview(site)], "user_id": "u1"}, 422),
    ):
        response = client.post("/telemetry/events", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    assert (
        client.post("/telemetry/events", data=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert client.post("/telemetry/events", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


@pytest.mark.policy("P10", "P20")
def test_reports_are_for_support_and_admin_staff_only(stack: Any, client: Client, mailbox: Mailbox) -> None:
    assert client.get("/telemetry/reports").status_code == 401
    email, password = signup_and_verify(client, mailbox)
    customer = signin(client, email, password)
    refused = customer.get("/telemetry/reports")
    assert refused.status_code == 403 and refused.json()["type"].endswith("/role-required")
    dpo = staff(stack, ["dpo"])
    assert dpo.get("/telemetry/reports").status_code == 403
    support = staff(stack, ["support"])
    for params in (
        {"by": "nope"},
        {"metric": "x"},
        {"from": "2026-13-01"},
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"format": "xml"},
        {"by": "page", "stream": "product"},
        {"limit": "0"},
        {"site": "a~b/c"},
    ):
        response = support.get("/telemetry/reports", params=params)
        assert response.status_code == 422, (params, response.text)
    assert support.get("/telemetry/reports", params={"by": "feature"}).status_code == 200


def test_the_catalogue_is_public(stack: Any) -> None:
    catalogue = requests.get(f"{stack.gateway_url}/telemetry/catalogue", timeout=10).json()
    assert "pageview" in catalogue["web"] and "report.exported" in catalogue["product"]
