"""Bench of telemetry (issue: telemetry ingestion and privacy-friendly analytics, P12, P23).

1. Ingest throughput: events per second accepted by one ingest instance (the gateway process)
   through HTTP, against publishing the same messages straight to the Pub/Sub emulator from one
   process with the same batched publisher. The ratio is the cost of everything around the publish
   (HTTP, validation against the catalogue, country lookup, user-agent parsing, hashing). While it
   runs, the aggregator's push subscription is paused, so the two figures compare like with like.
2. Firestore writes per 1,000 aggregated events, read from the aggregator's log lines, for SDK-like
   batches (the backlog of step 1) and for one-event page-view beacons, against the naive design of
   one write per counter per event.
3. Time from ingest to counter, p50 and p95: a page view POSTed to the gateway until its counter is
   readable in Firestore, against the same message published straight to the topic.
4. The daily unique-visitor error of the sketches (the measurement of tests/unit/test_telemetry_sketches.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from google.cloud import firestore

from bench.common import percentile, row
from devstack.http import request

REQUESTS = 200
BATCH = 50
THREADS = 8
BEACONS = 300
PROBES = 40
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
)
IPS = ("81.2.69.160", "8.8.8.8", "200.147.67.142", "2a02:2f0c::1", "77.88.8.8", "1.1.1.1")


def _batch(site: str, n: int, seed: int) -> list[dict[str, Any]]:
    return [
        {
            "name": "pageview",
            "url": f"https://{site}/docs/page-{(seed + i) % 12}?utm_source=bench",
            "referrer": ("https://www.google.com/search?q=x", "https://news.example/", None)[(seed + i) % 3],
        }
        for i in range(n)
    ]


def _headers(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": IPS[i % len(IPS)], "User-Agent": f"{AGENTS[i % len(AGENTS)]} b/{i}"}


def _set_push(stack: Any, endpoint: str | None) -> None:
    name = f"telemetry-aggregator-push-{stack.ports.gateway}"
    url = f"http://{stack.pubsub_host}/v1/projects/{stack.project}/subscriptions/{name}:modifyPushConfig"
    push = {"pushEndpoint": endpoint} if endpoint else {}
    response = request("POST", url, body={"pushConfig": push}, timeout=10)
    if response.status != 200:
        raise RuntimeError(f"modifyPushConfig failed: {response.status} {response.text[:200]}")


def _log_lines(stack: Any, start: int) -> tuple[list[dict[str, Any]], int]:
    path = Path(stack.gateway_log)
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read()
    entries = []
    for line in data.decode(errors="replace").splitlines():
        if '"telemetry folded"' in line:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries, start + len(data)


def _folded(stack: Any, start: int, events: int, timeout: float = 300) -> tuple[int, int]:
    """Wait until the aggregator logged `events` folded events after byte `start`; (events, writes)."""
    deadline = time.monotonic() + timeout
    while True:
        entries, _ = _log_lines(stack, start)
        done = sum(int(e.get("events", 0)) for e in entries)
        if done >= events or time.monotonic() > deadline:
            return done, sum(int(e.get("writes", 0)) for e in entries)
        time.sleep(0.2)


def _counter_exists(db: firestore.Client, site: str, day: str) -> bool:
    prefix = f"web~{site}~event~{day}~"
    return any(db.collection("telemetry_counters").document(f"{prefix}{shard}").get().exists for shard in range(4))


def ingest_throughput(stack: Any) -> tuple[list[str], int]:
    """Step 1; returns the lines and the log offset before the backlog (for step 2)."""
    from shared.adapters.pubsub import publish

    base = stack.gateway_url
    site = f"bench{secrets.token_hex(4)}.test"
    bodies = [json.dumps({"site": site, "events": _batch(site, BATCH, i)}) for i in range(REQUESTS)]
    local = threading.local()

    def post(i: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.post(
            f"{base}/telemetry/events",
            data=bodies[i],
            headers={**_headers(i), "Content-Type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 202 and response.json()["accepted"] == BATCH, response.text

    warm_from = Path(stack.gateway_log).stat().st_size
    post(0)  # warm: imports, geo database, ua-parser, salts, publisher
    _folded(stack, warm_from, BATCH, timeout=60)  # and folded, so that it is not counted below
    _set_push(stack, None)
    offset = Path(stack.gateway_log).stat().st_size
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(post, range(REQUESTS)))
    gateway = REQUESTS * BATCH / (time.perf_counter() - started)

    # Baseline: the same messages (as the ingest publishes them), straight to the emulator.
    topic = f"bench-direct-{secrets.token_hex(3)}"
    request("PUT", f"http://{stack.pubsub_host}/v1/projects/{stack.project}/topics/{topic}", body={}, timeout=10)
    message = {
        "stream": "web",
        "site": site,
        "day": datetime.now(UTC).date().isoformat(),
        "received_at": datetime.now(UTC).isoformat(),
        "visitor": secrets.token_hex(16),
        "context": {"country": "GB", "browser": "Firefox", "os": "Linux", "device": "desktop"},
        "events": [
            {"name": "pageview", "page": f"/docs/page-{i % 12}", "referrer": "google.com", "utm": {"utm_source": "b"}}
            for i in range(BATCH)
        ],
    }
    publish(stack.project, topic, message).result(timeout=30)
    started = time.perf_counter()

    def direct(_: int) -> None:
        publish(stack.project, topic, message, stream="web").result(timeout=60)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(direct, range(REQUESTS)))
    baseline = REQUESTS * BATCH / (time.perf_counter() - started)
    lines = [
        f"telemetry ingest ({REQUESTS} requests of {BATCH} events, {THREADS} client threads):",
        row("events/s accepted through the gateway", f"{gateway:,.0f}", f"{baseline:,.0f}", gateway / baseline),
        "  (baseline: the same messages published straight to the Pub/Sub emulator from one process)",
    ]
    return lines, offset


def writes_per_thousand(stack: Any, offset: int) -> list[str]:
    _set_push(stack, f"http://127.0.0.1:{stack.ports.gateway}/_pubsub/telemetry-aggregator")
    events, writes = _folded(stack, offset, REQUESTS * BATCH)
    batched = writes / events * 1000 if events else float("nan")

    site = f"bench{secrets.token_hex(4)}.test"
    start = Path(stack.gateway_log).stat().st_size
    session = requests.Session()
    for i in range(BEACONS):
        body = {"site": site, "events": _batch(site, 1, i)}
        assert session.post(f"{stack.gateway_url}/telemetry/events", json=body, headers=_headers(i)).status_code == 202
    beacon_events, beacon_writes = _folded(stack, start, BEACONS)
    beacons = beacon_writes / beacon_events * 1000 if beacon_events else float("nan")
    naive = _counters_per_pageview() * 1000
    return [
        "telemetry aggregation (Firestore document writes per 1,000 events, counters + redelivery marker):",
        row(f"batches of {BATCH} events ({events:,} folded)", f"{batched:,.0f}", f"{naive:,}", batched / naive),
        row(f"one-event beacons ({beacon_events} folded)", f"{beacons:,.0f}", f"{naive:,}", beacons / naive),
        "  (baseline: one write per counter per event, without a redelivery marker; ours are blind increments and",
        "   register maximums in one batch per message, no read)",
    ]


def _counters_per_pageview() -> int:
    """How many counters one page view of the bench increments (the naive design writes each one)."""
    from shared.telemetry.aggregator import cells_of
    from shared.telemetry.model import Context, TelemetryMessage, WireEvent

    message = TelemetryMessage(
        stream="web",
        site="bench.test",
        day=datetime.now(UTC).date(),
        received_at=datetime.now(UTC),
        visitor=secrets.token_hex(16),
        context=Context(country="GB", browser="Firefox", os="Linux", device="desktop"),
        events=[WireEvent(name="pageview", page="/", referrer="google.com", utm={"utm_source": "bench"})],
    )
    return len(cells_of(message, None).counts)


def ingest_to_counter(stack: Any) -> list[str]:
    db = firestore.Client(project=stack.project)
    day = datetime.now(UTC).date().isoformat()
    session = requests.Session()

    def probe_http() -> float:
        site = f"probe{secrets.token_hex(5)}.test"
        started = time.perf_counter()
        body = {"site": site, "events": [{"name": "pageview", "url": f"https://{site}/"}]}
        assert session.post(f"{stack.gateway_url}/telemetry/events", json=body, headers=_headers(1)).status_code == 202
        while not _counter_exists(db, site, day):
            time.sleep(0.005)
        return time.perf_counter() - started

    def probe_direct() -> float:
        site = f"probe{secrets.token_hex(5)}.test"
        message = {
            "stream": "web",
            "site": site,
            "day": day,
            "received_at": datetime.now(UTC).isoformat(),
            "visitor": secrets.token_hex(16),
            "context": {"country": "GB", "browser": "Firefox", "os": "Linux", "device": "desktop"},
            "events": [{"name": "pageview", "page": "/"}],
        }
        started = time.perf_counter()
        stack.publish("telemetry-events", message, {"stream": "web"})
        while not _counter_exists(db, site, day):
            time.sleep(0.005)
        return time.perf_counter() - started

    http = [probe_http() for _ in range(PROBES)]
    direct = [probe_direct() for _ in range(PROBES)]
    h50, h95, d50, d95 = percentile(http, 50), percentile(http, 95), percentile(direct, 50), percentile(direct, 95)
    return [
        f"telemetry ingest to counter ({PROBES} page views, one at a time):",
        row("ingest -> counter readable p50", f"{h50 * 1000:.0f} ms", f"{d50 * 1000:.0f} ms", h50 / d50),
        row("ingest -> counter readable p95", f"{h95 * 1000:.0f} ms", f"{d95 * 1000:.0f} ms", h95 / d95),
        "  (baseline: the same message published straight to telemetry-events, then pushed and folded)",
    ]


def visitor_error() -> list[str]:
    from shared.telemetry import sketches
    from shared.telemetry.privacy import visitor_hash

    errors = []
    for day in range(8):
        salt = hashlib.sha256(f"bench-day-{day}".encode()).digest()
        for n in (500, 2_000, 10_000, 50_000):
            shards: list[sketches.Registers] = [{} for _ in range(4)]
            for i in range(n):
                ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
                sketches.add(shards[i % 4], visitor_hash(salt, ip, "Mozilla/5.0", "bench.test"), sketches.SITE_P)
            errors.append(abs(sketches.count(shards, sketches.SITE_P) - n) / n)
    return [
        f"telemetry unique visitors (HyperLogLog p={sketches.SITE_P}, 4 shards merged, {len(errors)} salted days):",
        f"  relative error: mean {statistics.mean(errors):.2%}, worst {max(errors):.2%} (promised: under 2 %)",
    ]


def run(stack: Any) -> list[str]:
    os.environ.update(stack.env)  # this process talks to the emulators too (publisher, Firestore)
    lines, offset = ingest_throughput(stack)
    lines += ["", *writes_per_thousand(stack, offset)]
    lines += ["", *ingest_to_counter(stack)]
    lines += ["", *visitor_error()]
    return lines
