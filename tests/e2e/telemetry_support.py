"""Helpers of the telemetry end-to-end tests: clients from several countries and browsers, polling, staff.

Every IP address and user agent a telemetry test sends is recorded in USED_IPS / USED_AGENTS, so the
after-suite scan (test_zz_telemetry_scan.py) knows exactly what must never be stored or logged.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from google.cloud import firestore

from shared.telemetry import sketches
from shared.telemetry.privacy import visitor_hash
from shared.telemetry.salts import DailySalts
from tests.support import Client, new_email
from tests.visitors import DistinctRegisters

USED_IPS: set[str] = set()
USED_AGENTS: set[str] = set()

# Public addresses whose country the offline database knows (checked by the tests that use them).
COUNTRY_IPS = {
    "GB": ["81.2.69.160", "81.2.69.142", "81.2.69.192"],
    "US": ["8.8.8.8", "8.8.4.4", "4.2.2.2"],
    "BR": ["200.147.67.142", "200.147.67.10"],
    "RO": ["2a02:2f0c::1", "2a02:2f0c::2"],
}
AGENTS = {
    "Firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "Chrome": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mobile Safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}


def new_site() -> str:
    return f"t{secrets.token_hex(5)}.test"


def visitor(base_url: str, ip: str, agent: str, token: str | None = None, build: str | None = None) -> Client:
    """A client with a distinct build of its user agent (so each visitor's UA string is unique and traceable)."""
    ua = f"{agent} tv/{build or secrets.token_hex(3)}" if "Googlebot" not in agent else agent
    USED_IPS.add(ip)
    USED_AGENTS.add(ua)
    return Client(base_url, ip=ip, user_agent=ua, token=token)


class SiteVisitors:
    """The visitors of one test site, each with a sketch register of its own (tests/visitors.py).

    The test reproduces the ingest's visitor hash with today's salt, read from the emulator, and
    re-draws a visitor's user-agent build until its register is free; `registers()` is then exactly
    what the site's visitor sketch must hold.
    """

    def __init__(self, stack: Any, site: str) -> None:
        now = datetime.now(UTC)
        self.base_url = stack.gateway_url
        self.site = site
        self.salt = DailySalts(lambda: db(stack), lambda: now).salt(now.date())
        self.drawn = DistinctRegisters()
        self.hashes: list[str] = []

    def visitor(self, ip: str, agent: str) -> Client:
        builds: list[str] = []

        def hash_of(_attempt: int) -> str:
            builds.append(secrets.token_hex(3))
            return visitor_hash(self.salt, ip, f"{agent} tv/{builds[-1]}", self.site)

        self.hashes.append(self.drawn.draw(hash_of))
        return visitor(self.base_url, ip, agent, build=builds[-1])

    def registers(self) -> dict[int, int]:
        return sketches.merge(sketches.add({}, h, sketches.SITE_P) for h in self.hashes)


def site_registers(stack: Any, site: str) -> dict[int, int]:
    """The web visitor sketch of a site as stored, all days and parts merged."""
    return sketches.merge(sketches.load(cell.get("r")) for _, cell in counter_cells(stack, "web", site, "visitors"))


def send(client: Client, site: str | None, events: list[Any]) -> requests.Response:
    body: dict[str, Any] = {"events": events}
    if site is not None:
        body["site"] = site
    return client.post("/telemetry/events", json=body)


def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


def counter_cells(stack: Any, stream: str, site: str, dim: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(value, cell) of every stored counter document of a dimension of a site, all days and parts."""
    query = db(stack).collection("telemetry_counters").where(filter=firestore.FieldFilter("site", "==", site))
    for snap in query.stream():
        doc = snap.to_dict() or {}
        if doc.get("dim") == dim and doc.get("stream") == stream:
            yield from (doc.get("cells") or {}).items()


def counters(stack: Any, stream: str, site: str, dim: str) -> dict[str, int]:
    """value -> events of a dimension of a site, all days and parts added up."""
    found: dict[str, int] = {}
    for value, cell in counter_cells(stack, stream, site, dim):
        found[value] = found.get(value, 0) + int(cell.get("n", 0))
    return found


def wait_for(predicate: Callable[[], Any], timeout: float = 45.0, what: str = "condition") -> Any:
    """Poll until `predicate()` is truthy (the aggregator runs on the emulator's push, asynchronously)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def staff(stack: Any, roles: list[str]) -> Client:
    """A staff member signed in with Google (Auth emulator), roles granted by a direct Firestore update."""
    from tests.e2e.test_auth_google import google_id_token

    client = Client(stack.gateway_url)
    idp = google_id_token(stack, secrets.token_hex(8), new_email("staff"))
    response = client.post("/auth/google", json={"id_token": idp["idToken"]})
    assert response.status_code == 200, response.text
    account_id = response.json()["user"]["id"]
    db(stack).collection("accounts").document(account_id).update({"roles": roles})
    return client.clone(token=response.json()["session_token"])


def push(stack: Any, message_id: str, payload: dict[str, Any]) -> requests.Response:
    """Deliver a message to the aggregator exactly as the Pub/Sub emulator's push does (same id: a redelivery)."""
    body = {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "messageId": message_id,
            "publishTime": "2026-11-30T12:00:00Z",
            "attributes": {"stream": payload.get("stream", "web")},
        },
        "subscription": f"projects/{stack.env['GOOGLE_CLOUD_PROJECT']}/subscriptions/telemetry-aggregator-push",
    }
    return requests.post(f"{stack.gateway_url}/_pubsub/telemetry-aggregator", json=body, timeout=30)
