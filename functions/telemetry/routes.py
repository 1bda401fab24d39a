"""Routes of the telemetry function: each translates a request into one telemetry-service call."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from functions.telemetry import schemas
from shared.bootstrap import telemetry_ingest_service, telemetry_report_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem
from shared.identity.model import ADMIN, SUPPORT
from shared.telemetry import catalogue
from shared.telemetry.model import MAX_BODY_BYTES, PRODUCT_SITE
from shared.telemetry.reports import BREAKDOWNS, MAX_DAYS, METRICS, PRODUCT_ONLY, WEB_ONLY, ReportQuery, to_csv

router = Router()


@router.get("/telemetry/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/telemetry/catalogue")
def event_catalogue(_: Request) -> dict[str, Any]:
    return catalogue.describe()


@router.post(
    "/telemetry/events",
    body=schemas.EventBatch,
    status=202,
    auth="optional",
    max_body_bytes=MAX_BODY_BYTES,
)
def events(req: Request, body: schemas.EventBatch) -> Response:
    """With a session: product telemetry of that account (P12). Without: anonymous web analytics (P23)."""
    account = getattr(req.principal, "account", None)
    result = telemetry_ingest_service().ingest(
        events=body.events,
        ip=req.client_ip,
        user_agent=req.user_agent,
        site=body.site,
        account_id=account.id if account is not None else None,
    )
    return Response(result.public(), status=202)


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "invalid-query",
        "Invalid query",
        "One or more query parameters are invalid.",
        errors=[{"field": field, "message": message}],
    )


def _date(req: Request, name: str, default: date) -> date:
    raw = req.query.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "must be a date (YYYY-MM-DD)") from None


def report_query(req: Request, today: date, default_site: str) -> ReportQuery:
    """The report asked for, from `from`, `to`, `metric`, `by`, `stream`, `site`, `limit`."""
    q = req.query
    end = _date(req, "to", today)
    start = _date(req, "from", end - timedelta(days=6))
    if start > end:
        raise _invalid("from", "must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise _invalid("from", f"a report covers at most {MAX_DAYS} days")
    by = q.get("by", "day")
    if by != "day" and by not in BREAKDOWNS:
        raise _invalid("by", f"must be one of day, {', '.join(sorted(BREAKDOWNS))}")
    metric = q.get("metric", "events")
    if metric not in METRICS:
        raise _invalid("metric", f"must be one of {', '.join(METRICS)}")
    stream = q.get("stream") or ("product" if by in PRODUCT_ONLY else "web")
    if stream not in ("web", "product"):
        raise _invalid("stream", "must be web or product")
    if (stream == "web" and by in PRODUCT_ONLY) or (stream == "product" and by in WEB_ONLY):
        raise _invalid("by", f"{by} is not a breakdown of the {stream} stream")
    site = PRODUCT_SITE if stream == "product" else (q.get("site") or default_site).strip().lower()
    if not re.fullmatch(r"[a-z0-9.-]{1,253}", site):
        raise _invalid("site", "must be a site name")
    try:
        limit = int(q.get("limit", "20"))
    except ValueError:
        raise _invalid("limit", "must be an integer") from None
    if not 1 <= limit <= 1000:
        raise _invalid("limit", "must be between 1 and 1000")
    return ReportQuery(stream=stream, site=site, start=start, end=end, by=by, metric=metric, limit=limit)


@router.get("/telemetry/reports", roles=(SUPPORT, ADMIN))
def reports(req: Request) -> Response | dict[str, Any]:
    """Aggregates only; cells under 5 distinct visitors are folded into "other" (P23)."""
    service = telemetry_report_service()
    query = report_query(req, service.today(), service.default_site)
    fmt = req.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise _invalid("format", "must be json or csv")
    report = service.report(query, actor=req.principal.account)
    if fmt == "csv":
        name = f"telemetry-{query.stream}-{query.by}-{query.start.isoformat()}-{query.end.isoformat()}.csv"
        return Response(
            to_csv(report),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report
