"""Routes of the telemetry function: each translates a request into one telemetry-service call."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, cast

from functions.telemetry import schemas
from shared.bootstrap import telemetry_ingest_service, telemetry_report_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem
from shared.identity.model import ADMIN, SUPPORT
from shared.telemetry import catalogue
from shared.telemetry.model import MAX_BODY_BYTES, PRODUCT_SITE
from shared.telemetry.reports import MAX_DAYS, PRODUCT_ONLY, WEB_ONLY, ReportQuery, to_csv

router = Router()


@router.get("/telemetry/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.get("/telemetry/catalogue", response=schemas.CatalogueAnswer)
def event_catalogue(_: Request) -> dict[str, Any]:
    """Every event each stream accepts, with its properties (public)."""
    return catalogue.describe()


@router.post(
    "/telemetry/events",
    body=schemas.EventBatch,
    status=202,
    auth="optional",
    max_body_bytes=MAX_BODY_BYTES,
    response=schemas.IngestAnswer,
    problems=(503,),
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
        objected=bool(account is not None and (account.objection or {}).get("analytics")),
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


def report_query(params: schemas.ReportParams, today: date, default_site: str) -> ReportQuery:
    """The report asked for: each parameter is checked by `schemas.ReportParams`, what ties them together here."""
    end = params.to or today
    start = params.from_ or end - timedelta(days=6)
    if start > end:
        raise _invalid("from", "must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise _invalid("from", f"a report covers at most {MAX_DAYS} days")
    by, metric = params.by, params.metric
    stream = params.stream or ("product" if by in PRODUCT_ONLY else "web")
    if (stream == "web" and by in PRODUCT_ONLY) or (stream == "product" and by in WEB_ONLY):
        raise _invalid("by", f"{by} is not a breakdown of the {stream} stream")
    site = PRODUCT_SITE if stream == "product" else (params.site or default_site).strip().lower()
    if not re.fullmatch(r"[a-z0-9.-]{1,253}", site):
        raise _invalid("site", "must be a site name")
    return ReportQuery(stream=stream, site=site, start=start, end=end, by=by, metric=metric, limit=params.limit)


@router.get("/telemetry/reports", roles=(SUPPORT, ADMIN), query=schemas.ReportParams, response=schemas.ReportAnswer)
def reports(req: Request) -> Response | dict[str, Any]:
    """A report of web analytics or product telemetry: daily totals or a breakdown, as JSON or CSV.

    Aggregates only; cells under 5 distinct visitors are folded into "other" (P23). With `format=csv`
    the answer is `text/csv`, an attachment.
    """
    params = cast(schemas.ReportParams, req.params)
    service = telemetry_report_service()
    query = report_query(params, service.today(), service.default_site)
    report = service.report(query, actor=req.principal.account)
    if params.format == "csv":
        name = f"telemetry-{query.stream}-{query.by}-{query.start.isoformat()}-{query.end.isoformat()}.csv"
        return Response(
            to_csv(report),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report
