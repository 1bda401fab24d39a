"""After the whole suite: telemetry stores and logs nothing identifying (P23), raw product events aside (P12).

The test first sends its own events (addresses from several countries, several browsers, URLs and
referrers with personal data in their query strings, product events with a session), waits until
they are counted, then reads everything the run left in telemetry's places:

- every document of the telemetry collections (counters, salts, message markers),
- every object the aggregator wrote to the telemetry archive bucket,
- every line the telemetry functions logged (JSON lines of `telemetry` and `telemetry-aggregator`,
  and the gateway's access lines for their paths),

and finds no client IP address, no user agent string, no email address and no account id in any
of them, except the account id in the product-telemetry archive, which keeps it by design (P12:
exported and erased with the account). Other functions' data is out of scope on purpose: sessions
and security events keep IP addresses legitimately (P21, P22).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.telemetry.aggregator import COUNTERS, MESSAGES
from shared.telemetry.salts import SALTS
from tests.e2e.telemetry_support import (
    AGENTS,
    COUNTRY_IPS,
    USED_AGENTS,
    USED_IPS,
    counters,
    db,
    new_site,
    send,
    visitor,
    wait_for,
)
from tests.support import Client, Mailbox, signin, signup_and_verify

pytestmark = [pytest.mark.after_suite, pytest.mark.policy("P23", "P12")]

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
TELEMETRY_FUNCTIONS = {"telemetry", "telemetry-aggregator"}
ARCHIVE_NAME = re.compile(r"^product-events/account=[A-Za-z0-9_-]+/dt=\d{4}-\d{2}-\d{2}/[A-Za-z0-9_-]+\.ndjson$")


def _text(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.hex() if isinstance(v, bytes) else str(v), ensure_ascii=False)


def _produce(stack: Any, client: Client, mailbox: Mailbox) -> tuple[str, str]:
    """Events of every kind from several countries and browsers; returns (email, account id) of the product user."""
    site = new_site()
    sent = 0
    for country, ips in COUNTRY_IPS.items():
        for ip, browser in zip(ips, ("Firefox", "Chrome", "Mobile Safari"), strict=False):
            response = send(
                visitor(stack.gateway_url, ip, AGENTS[browser]),
                site,
                [
                    {
                        "name": "pageview",
                        "url": f"https://{site}/u/ada.lovelace@example.com/settings?token=abc&utm_source=mail",
                        "referrer": f"https://mail.example.org/inbox?to=ada%40example.com&ip={ip}",
                    },
                    {"name": "form_submit", "url": f"https://{site}/contact", "props": {"form": "demo"}},
                ],
            )
            assert response.status_code == 202 and response.json()["accepted"] == 2, (country, response.text)
            sent += 2
    email, password = signup_and_verify(client, mailbox)
    session = signin(client, email, password)
    account_id = session.get("/auth/me").json()["id"]
    app = visitor(stack.gateway_url, "81.2.69.160", AGENTS["Firefox"], token=session.token)
    product = send(app, None, [{"name": "search.performed", "props": {"results": 3}}, {"name": "app.opened"}])
    assert product.json()["accepted"] == 2
    wait_for(lambda: sum(counters(stack, "web", site, "event").values()) == sent, what="web events counted")
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    wait_for(
        lambda: list(
            gcs.list_blobs(stack.env["TELEMETRY_ARCHIVE_BUCKET"], prefix=f"product-events/account={account_id}/")
        ),
        what="the product events archived",
    )
    return email, account_id


def _leaks(text: str, needles: set[str], generic: bool = True) -> list[str]:
    found = sorted(n for n in needles if n and n in text)
    if generic:
        found += [f"email-like {m.group(0)!r}" for m in EMAIL.finditer(text)]
        found += [f"IPv4 {m.group(0)}" for m in IPV4.finditer(text)]
    return found


def test_telemetry_stores_and_logs_nothing_identifying(stack: Any, client: Client, mailbox: Mailbox) -> None:
    email, product_account = _produce(stack, client, mailbox)
    firestore_db = db(stack)
    account_ids = {snap.id for snap in firestore_db.collection("accounts").list_documents()}
    assert product_account in account_ids and USED_IPS and USED_AGENTS
    personal = USED_IPS | USED_AGENTS | {email}

    # Firestore: every document of the telemetry collections.
    scanned = 0
    for collection in (COUNTERS, SALTS, MESSAGES):
        for snap in firestore_db.collection(collection).stream():
            text = _text({"id": snap.id, **(snap.to_dict() or {})})
            leaks = _leaks(text, personal | account_ids)
            assert not leaks, f"{collection}/{snap.id} holds {leaks}"
            scanned += 1
    assert scanned > 20

    # Cloud Storage: every object of the archive; the account id is the one thing it may hold.
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    objects = 0
    for blob in gcs.list_blobs(stack.env["TELEMETRY_ARCHIVE_BUCKET"], prefix="product-events/"):
        if not ARCHIVE_NAME.match(blob.name):
            continue  # a file the export and erasure tests place under every declared prefix
        text = blob.download_as_bytes().decode()
        leaks = _leaks(text, personal)
        assert not leaks, f"gs://{blob.bucket.name}/{blob.name} holds {leaks}"
        owner = blob.name.split("/")[1].removeprefix("account=")
        for line in text.splitlines():
            assert json.loads(line)["account_id"] == owner
        objects += 1
    assert objects >= 1

    # Logs: the telemetry functions' own lines and the gateway's access lines for their paths.
    log_path = Path(stack.gateway_log) if stack.gateway_log else None
    if log_path is None or not log_path.exists():
        pytest.skip("no gateway log in this stack")
    lines = 0
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            ours = entry.get("function") in TELEMETRY_FUNCTIONS or str(entry.get("logger", "")).startswith(
                ("shared.telemetry", "functions.telemetry")
            )
        else:
            ours = "/telemetry" in line or "/_pubsub/telemetry-aggregator" in line
        if not ours:
            continue
        lines += 1
        leaks = _leaks(line.replace("127.0.0.1", "loopback"), personal | account_ids)
        assert not leaks, f"gateway log line holds {leaks}: {line[:300]}"
    assert lines > 10, "the telemetry functions logged nothing: the scan would prove nothing"
