"""Request bodies, query parameters and answers of the telemetry function."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from shared.telemetry.model import MAX_EVENTS
from shared.telemetry.reports import BREAKDOWNS, METRICS, THRESHOLD


class EventBatch(BaseModel):
    """`POST /telemetry/events`. Events are checked one by one against the catalogue, so a bad event
    is a rejection in the answer, not a refusal of the batch."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, max_length=253)
    events: list[Any] = Field(min_length=1, max_length=MAX_EVENTS)


# -- GET /telemetry/reports: the query ------------------------------------------------------------------------------
# Each parameter is checked here with the message the route always gave (422 `invalid-query`, one entry per
# parameter); what depends on several parameters (from <= to, the stream's breakdowns, the site) stays in the route.

BY_VALUES = ("day", *sorted(BREAKDOWNS))
STREAMS = ("web", "product")
FORMATS = ("json", "csv")


def _absent_if_empty(value: Any) -> Any:
    return None if value == "" else value


def _iso_date(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, date):
        return value or None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PydanticCustomError("date_format", "must be a date (YYYY-MM-DD)") from None


def _one_of(values: tuple[str, ...], message: str, empty_is_absent: bool = False) -> BeforeValidator:
    def check(value: Any) -> Any:
        if empty_is_absent and value in ("", None):
            return None
        if value not in values:
            raise PydanticCustomError("choice", message)
        return value

    return BeforeValidator(check)


def _limit(value: Any) -> int:
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise PydanticCustomError("int_parsing", "must be an integer") from None
    if not 1 <= limit <= 1000:
        raise PydanticCustomError("range", "must be between 1 and 1000")
    return limit


def _enum(values: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(values)})


Day = Annotated[date | None, BeforeValidator(_iso_date), WithJsonSchema({"type": "string", "format": "date"})]
By = Annotated[str, _one_of(BY_VALUES, f"must be one of day, {', '.join(sorted(BREAKDOWNS))}"), _enum(BY_VALUES)]
Metric = Annotated[str, _one_of(METRICS, f"must be one of {', '.join(METRICS)}"), _enum(METRICS)]
StreamName = Annotated[str | None, _one_of(STREAMS, "must be web or product", empty_is_absent=True), _enum(STREAMS)]
Format = Annotated[str, _one_of(FORMATS, "must be json or csv"), _enum(FORMATS)]
Site = Annotated[
    str | None, BeforeValidator(_absent_if_empty), WithJsonSchema({"type": "string", "pattern": "^[a-z0-9.-]{1,253}$"})
]
Limit = Annotated[int, BeforeValidator(_limit), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1000})]


def _no_null_default(schema: dict[str, Any]) -> None:
    """A parameter left out takes a default computed by the route: no `null` a client could send."""
    schema.pop("default", None)


class ReportParams(BaseModel):
    """The query of `GET /telemetry/reports` (unknown parameters are ignored)."""

    from_: Day = Field(
        default=None,
        alias="from",
        description="First day (YYYY-MM-DD); default: 6 days before `to`.",
        json_schema_extra=_no_null_default,
    )
    to: Day = Field(
        default=None,
        description="Last day (YYYY-MM-DD), at most 366 days after `from`; default: today.",
        json_schema_extra=_no_null_default,
    )
    by: By = Field(default="day", description="Daily totals (day) or a breakdown; feature and plan: product stream.")
    metric: Metric = Field(default="events", description="What a breakdown ranks by.")
    stream: StreamName = Field(
        default=None,
        description="Web analytics or product telemetry; default: product for feature and plan.",
        json_schema_extra=_no_null_default,
    )
    site: Site = Field(
        default=None,
        description="The site of a web report; default: the configured site.",
        json_schema_extra=_no_null_default,
    )
    limit: Limit = Field(default=20, description="Rows of a breakdown; the rest is folded into `other`.")
    format: Format = Field(default="json", description="csv answers `text/csv` as an attachment.")


# -- answers (documentation: the OpenAPI `response=` models) ---------------------------------------------------------


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class HealthAnswer(Answer):
    status: Literal["ok"]


class CatalogueProperty(Answer):
    type: str = Field(description="enum, str, int or bool.")
    values: list[str] | None = Field(default=None, description="The values of an enum.")


class CatalogueEvent(Answer):
    description: str
    url: Literal["required"] | None = Field(default=None, description="Present when the event carries its page URL.")
    props: dict[str, CatalogueProperty]


class CatalogueAnswer(Answer):
    """Every event each stream accepts, with its properties."""

    web: dict[str, CatalogueEvent]
    product: dict[str, CatalogueEvent]


class Rejection(Answer):
    index: int = Field(description="The event's position in the batch.")
    reason: str
    detail: str


class IngestAnswer(Answer):
    """What became of the batch: bad events are rejected one by one, never the whole batch."""

    stream: Literal["web", "product"]
    accepted: int
    rejected: int
    errors: list[Rejection]
    dropped_properties: int = Field(description="Unknown properties dropped from accepted events.")


class DailyRow(Answer):
    day: date
    events: int
    visitors: int
    bot_events: int


class BreakdownRow(Answer):
    value: str
    events: int
    visitors: int


class Counts(Answer):
    events: int
    visitors: int


class ReportAnswer(Answer):
    """Aggregates only; breakdown cells under `threshold` distinct visitors are folded into `other` (P23)."""

    stream: Literal["web", "product"]
    site: str
    from_: date = Field(alias="from")
    to: date
    by: str
    metric: Literal["events", "visitors"]
    threshold: int = Field(description=f"The smallest group shown on its own ({THRESHOLD} visitors).")
    rows: list[DailyRow | BreakdownRow] = Field(description="One per day (by=day), else one per value.")
    other: Counts | None = Field(default=None, description="Breakdowns only: the folded cells.")
