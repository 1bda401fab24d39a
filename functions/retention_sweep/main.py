"""The `retention-sweep` Cloud Function (P27): the daily sweep of every store on its retention period.

Internal only: Cloud Scheduler POSTs `/retention-sweep` with an OIDC token (terraform/scheduler.tf),
daily in Europe/Paris time; locally `make run` does the same through the gateway. The body is
optional: `{"dry_run": true}` counts what would be deleted, per category, and deletes nothing. The
answer is the run's report (counts per category, failures, duration); a failed category answers 503
so that Cloud Scheduler retries (the other categories were swept; deletes are idempotent).
"""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.bootstrap import retention_sweep as sweep_service
from shared.bootstrap import settings
from shared.errors import InvalidInput, Unavailable
from shared.http import HttpApp, Router

router = Router()


class SweepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False


class SweepAnswer(BaseModel):
    dry_run: bool
    counts: dict[str, int]
    failed: dict[str, str]
    skipped: dict[str, str]
    duration_ms: int


def parse(raw: bytes) -> SweepBody:
    """An empty body is a full run; otherwise `{"dry_run": bool}`."""
    try:
        return SweepBody.model_validate(json.loads(raw) if raw.strip() else {})
    except (ValueError, ValidationError):
        raise InvalidInput(detail='The body is empty or {"dry_run": true|false}.') from None


@router.post("/retention-sweep", raw_body=True, response=SweepAnswer, problems=(422, 503))
def sweep(_req: Any, raw: bytes) -> dict[str, Any]:
    """Run the retention sweep now (Cloud Scheduler's daily call); `{"dry_run": true}` deletes nothing."""
    report = sweep_service().run(dry_run=parse(raw).dry_run)
    if report.failed:
        raise Unavailable(f"Retention sweep categories failed: {', '.join(sorted(report.failed))}.", retry_after=300)
    return report.as_dict()


app = HttpApp("retention-sweep", settings=settings, routers=[router], public=False)


@functions_framework.http
def retention_sweep(request: flask.Request) -> flask.Response:
    return app.resolve(request)
