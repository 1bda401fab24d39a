"""The event catalogue: every event name the pipeline accepts, and the properties each may carry.

An event whose name is not here is rejected; a property key not declared for its event is dropped
(and counted in the answer), never stored. Property values are typed and bounded, and a string
value that looks like an email address, an IP address or a phone number rejects the event: the
catalogue is the allow-list that keeps personal data out of telemetry (P23).

Two catalogues, one per stream: `WEB` events come without a session (the public websites),
`PRODUCT` events with one (the signed-in product). Sending one stream's event on the other is
refused with a reason that says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Stream = Literal["web", "product"]
WEB: Stream = "web"
PRODUCT: Stream = "product"

MAX_STRING = 64
MAX_INT = 1_000_000_000

# Free-text values are short identifiers (a CTA name, a file type), never prose: letters, digits,
# spaces and a few separators.
_TOKEN = re.compile(r"^[\w][\w .:/+#-]{0,63}$", re.UNICODE)
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{0,4}\b")
_PHONE = re.compile(r"\+?\d[\d ().-]{7,}\d")


def looks_personal(value: str) -> str | None:
    """What kind of personal data `value` looks like ("email", "ip", "phone"), or None."""
    if _EMAIL.search(value):
        return "email"
    if _IPV4.search(value) or _IPV6.search(value):
        return "ip"
    if _PHONE.search(value):
        return "phone"
    return None


@dataclass(frozen=True)
class Prop:
    """A property's type. `kind`: "enum" (one of `values`), "str" (a short token), "int", "bool"."""

    kind: Literal["enum", "str", "int", "bool"]
    values: tuple[str, ...] = ()
    description: str = ""

    def check(self, value: Any) -> tuple[Any, str | None]:
        """The normalised value, or None and why it is refused."""
        if self.kind == "bool":
            return (value, None) if isinstance(value, bool) else (None, "must be true or false")
        if self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None, "must be an integer"
            if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
                return None, "must be an integer"
            if not 0 <= value <= MAX_INT:
                return None, f"must be between 0 and {MAX_INT}"
            return int(value), None
        if not isinstance(value, str):
            return None, "must be a string"
        if self.kind == "enum":
            return (value, None) if value in self.values else (None, f"must be one of {', '.join(self.values)}")
        if not _TOKEN.match(value):
            return None, f"must be a short identifier (at most {MAX_STRING} letters, digits, spaces, . : / + # -)"
        return value, None

    @property
    def aggregated(self) -> bool:
        """Bounded values are counted per value in the reports ("prop" breakdown); numbers are not."""
        return self.kind in ("enum", "bool", "str")


@dataclass(frozen=True)
class EventSpec:
    name: str
    stream: Stream
    description: str
    props: dict[str, Prop] = field(default_factory=dict)
    needs_url: bool = False


PLAN_TIERS = ("free", "pro", "enterprise")

_WEB_EVENTS = (
    EventSpec("pageview", WEB, "A page of a website was shown", needs_url=True),
    EventSpec("cta_click", WEB, "A call to action was clicked", {"cta": Prop("str", description="the CTA's name")}),
    EventSpec(
        "signup_start",
        WEB,
        "The sign-up form was opened",
        {"plan": Prop("enum", PLAN_TIERS, "the plan chosen on the pricing page")},
    ),
    EventSpec("signup_complete", WEB, "The sign-up form was sent"),
    EventSpec("outbound_click", WEB, "A link to another site was followed", {"domain": Prop("str")}),
    EventSpec("download", WEB, "A file was downloaded", {"file": Prop("str", description="the file's public name")}),
    EventSpec("video_play", WEB, "A video was started", {"video": Prop("str")}),
    EventSpec("form_submit", WEB, "A form (contact, demo request) was sent", {"form": Prop("str")}),
    EventSpec("search", WEB, "The docs or blog search was used", {"section": Prop("enum", ("docs", "blog", "help"))}),
)

_PRODUCT_EVENTS = (
    EventSpec("app.opened", PRODUCT, "The app was opened", {"platform": Prop("enum", ("web", "ios", "android"))}),
    EventSpec("project.created", PRODUCT, "A project was created", {"template": Prop("str")}),
    EventSpec(
        "asset.uploaded",
        PRODUCT,
        "Photos or files were uploaded",
        {
            "file_type": Prop("str"),
            "count": Prop("int"),
            "size_kb": Prop("int"),
            "source": Prop("enum", ("camera", "library", "web", "api")),
        },
    ),
    EventSpec("asset.tagged", PRODUCT, "An asset was tagged", {"ai_suggested": Prop("bool")}),
    EventSpec("search.performed", PRODUCT, "A search was run", {"results": Prop("int"), "filters": Prop("int")}),
    EventSpec("report.exported", PRODUCT, "A report was exported", {"format": Prop("enum", ("pdf", "csv", "xlsx"))}),
    EventSpec("share.link_created", PRODUCT, "A share link was created", {"expires_days": Prop("int")}),
    EventSpec("workflow.run", PRODUCT, "A workflow ran", {"steps": Prop("int"), "duration_ms": Prop("int")}),
    EventSpec("integration.connected", PRODUCT, "An integration was connected", {"integration": Prop("str")}),
    EventSpec("settings.changed", PRODUCT, "A settings section was saved", {"section": Prop("str")}),
    EventSpec("error.shown", PRODUCT, "An error message was shown", {"code": Prop("str")}),
)

CATALOGUE: dict[str, EventSpec] = {spec.name: spec for spec in (*_WEB_EVENTS, *_PRODUCT_EVENTS)}


def events_of(stream: Stream) -> list[EventSpec]:
    return [spec for spec in CATALOGUE.values() if spec.stream == stream]


def describe() -> dict[str, Any]:
    """The catalogue as JSON (served at GET /telemetry/catalogue, shown in the README)."""
    return {
        stream: {
            spec.name: {
                "description": spec.description,
                **({"url": "required"} if spec.needs_url else {}),
                "props": {
                    key: {"type": prop.kind, **({"values": list(prop.values)} if prop.values else {})}
                    for key, prop in spec.props.items()
                },
            }
            for spec in events_of(stream)
        }
        for stream in (WEB, PRODUCT)
    }
