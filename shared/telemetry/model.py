"""What travels on the `telemetry-events` topic, and how a raw event from a client becomes one.

One accepted request becomes one Pub/Sub message (`TelemetryMessage`): the reduced request context
(country, browser family, OS family, device class), the daily visitor hash and the accepted events.
A web message holds nothing that identifies a person; a product message also holds the account id,
for the 90-day raw archive only (P12). IP addresses and user agent strings never reach the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.telemetry.catalogue import CATALOGUE, PRODUCT, WEB, Stream, looks_personal
from shared.telemetry.privacy import UrlRefused, clean_url, referrer_domain

TOPIC = "telemetry-events"
PRODUCT_SITE = "app"  # the product stream's "site" in counters and reports
MAX_EVENTS = 500
MAX_BODY_BYTES = 1_000_000
MAX_PROPS = 20
EVENT_FIELDS = {
    WEB: frozenset({"name", "url", "referrer", "props"}),
    PRODUCT: frozenset({"name", "props", "ts"}),
}
CLOCK_SKEW = timedelta(hours=1)
MAX_EVENT_AGE = timedelta(days=7)


class Context(BaseModel):
    """The reduced request: all that is kept of the IP address and the user agent."""

    model_config = ConfigDict(extra="forbid")

    country: str
    browser: str
    os: str
    device: str
    bot: bool = False


class WireEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    props: dict[str, str | int | bool] = Field(default_factory=dict)
    page: str | None = None  # web: the clean path
    referrer: str | None = None  # web: the referring domain
    utm: dict[str, str] = Field(default_factory=dict)
    ts: datetime | None = None  # product: the client's time, when given


class TelemetryMessage(BaseModel):
    """One accepted request, as published to `telemetry-events`."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    stream: Literal["web", "product"]
    site: str = Field(pattern=r"^[a-z0-9.-]{1,253}$")
    day: date
    received_at: datetime
    visitor: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")  # hash(daily salt, ...); None for bots
    # product only: the opaque account id (archive, export, erasure)
    account_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,128}$")
    context: Context
    events: list[WireEvent]


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    detail: str

    def public(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


@dataclass
class Checked:
    """The outcome of checking one raw event against the catalogue."""

    event: WireEvent | None = None
    rejection: Rejection | None = None
    dropped: int = 0  # unknown keys dropped


def _reject(index: int, reason: str, detail: str, dropped: int = 0) -> Checked:
    return Checked(rejection=Rejection(index, reason, detail), dropped=dropped)


def check_event(index: int, raw: Any, stream: Stream, site: str, now: datetime) -> Checked:
    """Validate one raw event for `stream`; unknown keys are dropped and counted, never kept."""
    if not isinstance(raw, dict):
        return _reject(index, "not-an-object", "an event is a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return _reject(index, "missing-name", "an event needs a name (a string)")
    spec = CATALOGUE.get(name)
    if spec is None:
        return _reject(index, "unknown-event", "this event name is not in the catalogue (GET /telemetry/catalogue)")
    if spec.stream != stream:
        detail = (
            "a product event is sent with a session token"
            if spec.stream == PRODUCT
            else "a web analytics event is sent without a session token"
        )
        return _reject(index, "wrong-stream", detail)
    dropped = sum(1 for key in raw if key not in EVENT_FIELDS[stream])
    props_raw = raw.get("props", {})
    if props_raw is None:
        props_raw = {}
    if not isinstance(props_raw, dict):
        return _reject(index, "invalid-props", "props must be a JSON object", dropped)
    props: dict[str, str | int | bool] = {}
    for key, value in props_raw.items():
        prop = spec.props.get(key)
        if prop is None:
            dropped += 1
            continue
        if isinstance(value, str) and (kind := looks_personal(value)):
            return _reject(index, "personal-data", f"props.{key} looks like {_article(kind)}: not accepted", dropped)
        checked, problem = prop.check(value)
        if problem:
            return _reject(index, "invalid-property", f"props.{key} {problem}", dropped)
        props[key] = checked
        if len(props) > MAX_PROPS:
            return _reject(index, "invalid-props", f"at most {MAX_PROPS} properties", dropped)
    event = WireEvent(name=name, props=props)
    if stream == WEB:
        url = raw.get("url")
        if url is not None or spec.needs_url:
            if not isinstance(url, str) or not url:
                return _reject(index, "invalid-url", "url is required (the page's address)", dropped)
            try:
                page = clean_url(url[:2048], site)
            except UrlRefused as refused:
                return _reject(index, refused.reason, refused.detail, dropped)
            event.page, event.utm = page.path, page.utm
        referrer = raw.get("referrer")
        if referrer is not None and not isinstance(referrer, str):
            return _reject(index, "invalid-referrer", "referrer must be a string (a URL)", dropped)
        event.referrer = referrer_domain(referrer, site)
    else:
        ts = raw.get("ts")
        if ts is not None:
            parsed = _timestamp(ts)
            if parsed is None or not now - MAX_EVENT_AGE <= parsed <= now + CLOCK_SKEW:
                detail = "ts must be an ISO 8601 time with a zone, within the last 7 days"
                return _reject(index, "invalid-timestamp", detail, dropped)
            event.ts = parsed
    return Checked(event=event, dropped=dropped)


def _article(kind: str) -> str:
    return {"email": "an email address", "ip": "an IP address", "phone": "a phone number"}.get(kind, kind)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
