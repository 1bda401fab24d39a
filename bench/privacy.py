"""Bench of data subject requests (issue: data subject requests, P11, P26).

1. Erasure of an account holding 10,000 Firestore documents (security events, sessions, and
   sub-collections under the account) and 1,000 Cloud Storage objects, through the privacy worker
   (every step persisted, the data map walked, fake processors that answer at once), against a bare
   BulkWriter deleting exactly the same documents plus bare batched Storage deletes of exactly the
   same objects, on the same emulators. The ratio is the price of resumability and of discovering
   the data instead of being handed its list.
2. Peak memory of exporting 200 MB of business files against exporting 1 MB, each in a fresh
   process (`resource.getrusage` max RSS, and tracemalloc's peak of Python allocations during the
   export): the archive is streamed, so both should be about the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import row

ROOT = Path(__file__).resolve().parent.parent
EVENTS, SESSIONS, PROJECTS, ITEMS_PER_PROJECT = 4_000, 1_000, 50, 99  # 4,000 + 1,000 + 50 + 4,950 = 10,000
OBJECTS = 1_000
EXPORT_SMALL, EXPORT_LARGE = 1, 200  # MB
FILE_MB = 10


def _env(stack: Any) -> None:
    os.environ.update(stack.env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _seed(db: Any, storage: Any, config: Any, account_id: str) -> tuple[list[Any], list[str]]:
    """10,000 documents and 1,000 objects of one account; returns their references and names."""
    from shared.adapters import storage as gcs
    from shared.identity.tokens import new_id

    now = datetime.now(UTC)
    refs: list[Any] = []
    bulk = db.bulk_writer()
    account = db.collection("accounts").document(account_id)
    bulk.set(
        account,
        {"email": f"{account_id}@example.com", "first_name": "Bench", "last_name": "Mark", "created_at": now},
    )
    refs.append(account)
    for i in range(EVENTS):
        ref = db.collection("security_events").document()
        bulk.set(ref, {"account_id": account_id, "type": "signin_succeeded", "at": now, "ip": f"198.51.100.{i % 250}"})
        refs.append(ref)
    for _ in range(SESSIONS):
        ref = db.collection("sessions").document(new_id("tok"))
        bulk.set(ref, {"account_id": account_id, "id": new_id("ses"), "expires_at": now + timedelta(hours=1)})
        refs.append(ref)
    for p in range(PROJECTS):
        project = account.collection("projects").document(f"p{p}")
        bulk.set(project, {"name": f"Project {p}"})
        refs.append(project)
        for i in range(ITEMS_PER_PROJECT):
            item = project.collection("items").document(f"i{i}")
            bulk.set(item, {"n": i, "label": f"item {i} of project {p}"})
            refs.append(item)
    bulk.close()
    bucket = gcs.bucket(storage, config.business_data_bucket)
    names = [f"accounts/{account_id}/files/{i // 100}/f{i}.bin" for i in range(OBJECTS)]
    payload = os.urandom(1024)
    for name in names:  # one at a time: the storage emulator stalls under concurrent uploads
        bucket.blob(name).upload_from_string(payload)
    return refs, names


def _fakes() -> list[Any]:
    from shared import datamap
    from shared.processors import StepOutcome

    class Instant:
        def __init__(self, name: str) -> None:
            self.name = name

        def erase(self, _subject: Any) -> StepOutcome:
            return StepOutcome("done", "bench")

        def export(self, _subject: Any) -> dict[str, Any]:
            return {"found": False}

    return [Instant(p.name) for p in datamap.PROCESSORS]


class _NoMail:
    def send(self, _mail: Any) -> None:
        pass


def _step_seconds(record: dict[str, Any], kinds: tuple[str, ...]) -> float:
    total = 0.0
    for step in record.get("steps", []):
        if step["name"].split(":")[0] in kinds and step["started_at"] and step["finished_at"]:
            total += (step["finished_at"] - step["started_at"]).total_seconds()
    return total


def erasure(stack: Any, rounds: int = 1) -> list[str]:
    _env(stack)
    from google.cloud import firestore

    from shared.adapters import storage as gcs
    from shared.bootstrap import build_privacy_service, build_privacy_worker
    from shared.config import Settings
    from shared.identity.tokens import new_id

    config = Settings.from_env()
    db = firestore.Client(project=config.project_id)
    storage = gcs.storage_client(config.project_id)
    common = {"adapters": _fakes, "mailer": _NoMail(), "publish": lambda _t, _p: None}
    service = build_privacy_service(config, **common)
    worker = build_privacy_worker(config, **common)
    ours: list[tuple[float, float, float]] = []  # total, Firestore steps, Storage steps
    bare: list[tuple[float, float, float]] = []
    for _ in range(rounds):
        account_id = new_id("acc")
        _seed(db, storage, config, account_id)
        request_id = service.start_dpo_erasure("bench", account_id, "bench")["request_id"]
        started = time.perf_counter()
        status = worker.run(request_id)
        total = time.perf_counter() - started
        assert status == "completed", status
        record = service.deletion_record(request_id) or {}
        ours.append(
            (total, _step_seconds(record, ("sessions", "firestore", "account")), _step_seconds(record, ("storage",)))
        )

        account_id = new_id("acc")
        refs, names = _seed(db, storage, config, account_id)
        started = time.perf_counter()
        bulk = db.bulk_writer()
        for ref in refs:
            bulk.delete(ref)
        bulk.close()
        middle = time.perf_counter()
        bucket = gcs.bucket(storage, config.business_data_bucket)
        gcs.delete_objects(bucket, (bucket.blob(name) for name in names))
        ended = time.perf_counter()
        bare.append((ended - started, middle - started, ended - middle))
    docs = EVENTS + SESSIONS + PROJECTS * (1 + ITEMS_PER_PROJECT)
    best, base = min(ours), min(bare)
    return [
        f"Erasure of one account: {docs:,} Firestore documents (sub-collections included), {OBJECTS:,} objects",
        row("privacy worker, whole request", f"{best[0]:.2f} s", f"{base[0]:.2f} s", best[0] / base[0]),
        row("  of which Firestore steps", f"{best[1]:.2f} s", f"{base[1]:.2f} s", best[1] / base[1]),
        row("  of which Storage steps", f"{best[2]:.2f} s", f"{base[2]:.2f} s", best[2] / base[2]),
        f"  (baseline: a bare BulkWriter over the same {docs + 1:,} known references, then bare batched Storage",
        "   deletes of the same object names: no discovery, no persisted steps, nothing resumable)",
    ]


CHILD = """
import json, os, resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
from shared.bootstrap import build_privacy_worker
from shared.config import Settings
from bench.privacy import _fakes, _NoMail
config = Settings.from_env()
worker = build_privacy_worker(config, adapters=_fakes, mailer=_NoMail(), publish=lambda _t, _p: None)
worker.db.collection("accounts").limit(1).get()  # warm the clients before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
started = time.perf_counter()
status = worker.run({request_id!r})
seconds = time.perf_counter() - started
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {{"status": status, "rss_before": before, "rss_after": after, "traced_peak": peak, "seconds": seconds}}
print(json.dumps(result))
"""


def _export_in_child(stack: Any, request_id: str) -> dict[str, Any]:
    script = CHILD.format(root=str(ROOT), request_id=request_id)
    env = {**os.environ, **stack.env, "LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def export_memory(stack: Any) -> list[str]:
    _env(stack)
    from google.cloud import firestore

    from shared.adapters import storage as gcs
    from shared.bootstrap import build_privacy_service
    from shared.config import Settings
    from shared.identity.model import Account, Principal, SessionRecord
    from shared.identity.tokens import new_id

    config = Settings.from_env()
    db = firestore.Client(project=config.project_id)
    storage = gcs.storage_client(config.project_id)
    service = build_privacy_service(config, adapters=_fakes, mailer=_NoMail(), publish=lambda _t, _p: None)
    bucket = gcs.bucket(storage, config.business_data_bucket)
    chunk = os.urandom(FILE_MB * 2**20)
    results: dict[int, dict[str, Any]] = {}
    for megabytes in (EXPORT_SMALL, EXPORT_LARGE):
        now = datetime.now(UTC)
        account = Account(new_id("acc"), f"export{megabytes}@example.com", "Bench", "Mark", now, email_verified=True)
        db.collection("accounts").document(account.id).set(account.to_doc())
        if megabytes < FILE_MB:
            bucket.blob(f"accounts/{account.id}/one.bin").upload_from_string(chunk[: megabytes * 2**20])
        else:
            names = [f"accounts/{account.id}/f{i}.bin" for i in range(megabytes // FILE_MB)]
            for name in names:
                bucket.blob(name).upload_from_string(chunk)
        session = SessionRecord(new_id("ses"), account.id, "x", now, now, now, "", "", "password", now)
        request_id = service.create_request(Principal(account, session), "export", None, "", "")["request_id"]
        results[megabytes] = _export_in_child(stack, request_id)
        assert results[megabytes]["status"] == "completed", results[megabytes]
    small, large = results[EXPORT_SMALL], results[EXPORT_LARGE]
    mib = 1024  # ru_maxrss is in KiB on Linux
    return [
        f"Export memory: {EXPORT_LARGE} MB of business files against {EXPORT_SMALL} MB (fresh process each)",
        row(
            f"peak RSS, {EXPORT_LARGE} MB export",
            f"{large['rss_after'] / mib:.0f} MiB",
            f"{small['rss_after'] / mib:.0f} MiB",
            large["rss_after"] / small["rss_after"],
        ),
        row(
            "peak Python allocations during the export",
            f"{large['traced_peak'] / 2**20:.1f} MiB",
            f"{small['traced_peak'] / 2**20:.1f} MiB",
            large["traced_peak"] / max(1, small["traced_peak"]),
        ),
        f"  (export time {large['seconds']:.1f} s for {EXPORT_LARGE} MB, {small['seconds']:.1f} s for"
        f" {EXPORT_SMALL} MB;"
        f" RSS before the export {large['rss_before'] / mib:.0f} / {small['rss_before'] / mib:.0f} MiB)",
    ]


def run(stack: Any) -> list[str]:
    return [*erasure(stack), "", *export_memory(stack)]
