"""`make run` fires every Cloud Scheduler job of terraform/ on its own schedule (P27)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devstack.scheduler import Job, LocalScheduler, terraform_jobs

pytestmark = pytest.mark.policy("P27")


def test_the_jobs_come_from_terraform_with_their_time_zones() -> None:
    jobs = {job.name: job for job in terraform_jobs()}
    sweep = jobs["retention-sweep"]
    assert (sweep.kind, sweep.path, sweep.time_zone) == ("http", "/retention-sweep", "Europe/Paris")
    check = jobs["privacy-check"]
    assert (check.kind, check.topic, check.data) == ("pubsub", "privacy-jobs", {"kind": "tick"})


def test_cron_is_evaluated_in_the_job_time_zone_across_daylight_saving() -> None:
    job = Job("retention-sweep", "17 3 * * *", "Europe/Paris", "http", path="/retention-sweep")
    winter = job.next_after(datetime(2026, 1, 10, 12, tzinfo=UTC))
    summer = job.next_after(datetime(2026, 7, 10, 12, tzinfo=UTC))
    assert (winter.hour, winter.minute) == (2, 17) and (summer.hour, summer.minute) == (1, 17)


def test_a_due_job_is_posted_through_the_gateway_and_logged_once() -> None:
    seen: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            seen.append((self.path, json.loads(self.rfile.read(length) or b"null")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lines: list[str] = []
    published: list[tuple[str, Any]] = []
    every_minute = Job("retention-sweep", "* * * * *", "Europe/Paris", "http", path="/retention-sweep")
    tick = Job("privacy-check", "* * * * *", "Etc/UTC", "pubsub", topic="privacy-jobs", data={"kind": "tick"})
    times = iter([datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)] + [datetime(2026, 1, 1, 0, 1, 1, tzinfo=UTC)] * 1000)
    scheduler = LocalScheduler(
        [every_minute, tick],
        f"http://127.0.0.1:{server.server_address[1]}",
        lambda topic, data: published.append((topic, data)) or "m1",
        log=lines.append,
        clock=lambda: next(times),
    )
    try:
        scheduler.start()
        deadline = datetime.now(UTC).timestamp() + 10
        while len(lines) < 3 and datetime.now(UTC).timestamp() < deadline:
            threading.Event().wait(0.05)
    finally:
        scheduler.stop()
        server.shutdown()
    assert seen == [("/retention-sweep", {})]
    assert published == [("privacy-jobs", {"kind": "tick"})]
    announced, *fired = lines  # one line naming the jobs at start, then one per firing
    assert "retention-sweep" in announced and "privacy-check" in announced
    assert len(fired) == 2 and all(line.startswith("devstack: scheduler fired") for line in fired)
