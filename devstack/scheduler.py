"""Cloud Scheduler, locally: `make run` fires every job terraform/ declares, on its own cron schedule.

The jobs are read from terraform (one source of truth): every non-public HTTP function of the
functions map with a `schedule` (POSTed at /<name> through the gateway with an empty JSON body, as
terraform/scheduler.tf makes Cloud Scheduler do) and every other `google_cloud_scheduler_job` (a
Pub/Sub target is published to its topic on the emulator). Cron expressions are evaluated with
croniter in the job's `time_zone`. One log line per firing.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from devstack.tools import REPO_ROOT

TERRAFORM = REPO_ROOT / "terraform"


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    time_zone: str
    kind: str  # "http" (POST path through the gateway) or "pubsub" (publish data to topic)
    path: str = ""
    topic: str = ""
    data: dict[str, Any] | None = None

    def next_after(self, when: datetime) -> datetime:
        """The first firing strictly after `when` (aware), in UTC."""
        from croniter import croniter

        local = when.astimezone(ZoneInfo(self.time_zone))
        return croniter(self.schedule, local).get_next(datetime).astimezone(UTC)

    @property
    def target(self) -> str:
        return f"POST {self.path}" if self.kind == "http" else f"publish to {self.topic}"


def _load(directory: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    import hcl2

    options = hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False, preserve_heredocs=False
    )
    locals_: dict[str, Any] = {}
    variables: dict[str, Any] = {}
    jobs: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            doc = hcl2.load(handle, serialization_options=options)
        for block in doc.get("locals", []):
            locals_.update(block)
        for block in doc.get("variable", []):
            variables.update(block)
        for block in doc.get("resource", []):
            jobs.update(block.get("google_cloud_scheduler_job", {}))
    return locals_, variables, jobs


def _first(value: Any) -> dict[str, Any]:
    return value[0] if isinstance(value, list) else value


def _resolve(value: Any, variables: dict[str, Any]) -> str:
    text = str(value)
    found = re.fullmatch(r"\$\{var\.(\w+)\}", text)
    if found:
        return str(variables[found.group(1)]["default"])
    return text


def _jsonencoded(expression: str) -> dict[str, Any]:
    """`${base64encode(jsonencode({ kind = "tick" }))}` -> {"kind": "tick"} (flat string/number maps)."""
    body = re.search(r"jsonencode\(\{(.*)\}\)", expression, re.S)
    if not body:
        return {}
    pairs = re.findall(r'"?(\w+)"?\s*[=:]\s*("(?:[^"\\]|\\.)*"|[-\d.]+|true|false)', body.group(1))
    return {key: json.loads(raw) for key, raw in pairs}


def terraform_jobs(directory: Path = TERRAFORM) -> list[Job]:
    """Every Cloud Scheduler job terraform declares, by name."""
    locals_, variables, resources = _load(directory)
    defaults = locals_.get("function_defaults", {})
    jobs: list[Job] = []
    for name, spec in locals_.get("function_specs", {}).items():
        f = {**defaults, **spec}
        if f.get("trigger", "http") == "http" and not f.get("public", True) and f.get("schedule"):
            tz = _resolve(f.get("time_zone") or "Etc/UTC", variables)
            jobs.append(Job(name, _resolve(f["schedule"], variables), tz, "http", path=f"/{name}"))
    for key, body in resources.items():
        if key == "fn":  # the functions map's jobs, above
            continue
        name = _resolve(body.get("name", key), variables)
        schedule, tz = _resolve(body["schedule"], variables), _resolve(body.get("time_zone", "Etc/UTC"), variables)
        if "pubsub_target" in body:
            target = _first(body["pubsub_target"])
            topic = re.search(r'\["([^"]+)"\]', str(target["topic_name"]))
            data = _jsonencoded(str(target.get("data", "")))
            jobs.append(Job(name, schedule, tz, "pubsub", topic=topic.group(1) if topic else "", data=data))
        elif "http_target" in body:
            uri = str(_first(body["http_target"]).get("uri", ""))
            jobs.append(Job(name, schedule, tz, "http", path="/" + uri.rsplit("/", 1)[-1]))
    return sorted(jobs, key=lambda j: j.name)


def fire(job: Job, gateway_url: str, publish: Callable[[str, dict[str, Any]], Any]) -> str:
    """Run `job` once as Cloud Scheduler would; returns the outcome ("HTTP 200", "published <id>")."""
    from devstack.http import request

    if job.kind == "http":
        resp = request("POST", f"{gateway_url}{job.path}", body={}, timeout=1800)
        return f"HTTP {resp.status}"
    return f"published {publish(job.topic, job.data or {})}"


class LocalScheduler:
    """A thread firing each job at its next cron time (gateway_url: the stack's gateway)."""

    def __init__(
        self,
        jobs: list[Job],
        gateway_url: str,
        publish: Callable[[str, dict[str, Any]], Any],
        log: Callable[[str], None] = print,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.jobs = jobs
        self.gateway_url = gateway_url
        self.publish = publish
        self.log = log
        self.clock = clock
        self.fired: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LocalScheduler:
        names = ", ".join(f"{job.name} ({job.schedule} {job.time_zone})" for job in self.jobs) or "none"
        self.log(f"devstack: Cloud Scheduler jobs from terraform/, fired on their schedules: {names}")
        self._thread = threading.Thread(target=self._loop, name="devstack-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        now = self.clock()
        upcoming = {job.name: job.next_after(now) for job in self.jobs}
        while not self._stop.is_set():
            now = self.clock()
            for job in self.jobs:
                if upcoming[job.name] <= now:
                    self.run_one(job)
                    upcoming[job.name] = job.next_after(now)
            wait = min(upcoming.values(), default=now) - self.clock()
            self._stop.wait(max(0.05, min(wait.total_seconds(), 30.0)))

    def run_one(self, job: Job) -> str:
        try:
            outcome = fire(job, self.gateway_url, self.publish)
        except Exception as exc:  # a firing that fails is logged; the next one comes on schedule
            outcome = f"failed: {type(exc).__name__}: {exc}"
        self.fired.append((job.name, outcome))
        self.log(f"devstack: scheduler fired {job.name} ({job.schedule} {job.time_zone}, {job.target}): {outcome}")
        return outcome
