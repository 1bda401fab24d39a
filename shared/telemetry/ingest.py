"""The ingest use case (P12, P23): check a batch against the catalogue, reduce the request, publish.

The ingest never writes Firestore: an accepted batch becomes one `telemetry-events` message
(published through the process-wide batched publisher) and the answer says how many events were
accepted and why the others were not. The IP address and the user agent string do not leave this
module: they become a country, browser/OS/device families and a daily-salted visitor hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.config import Settings
from shared.errors import InvalidInput, Unavailable
from shared.observability import get_logger
from shared.telemetry.catalogue import PRODUCT, WEB, Stream
from shared.telemetry.model import (
    PRODUCT_SITE,
    Context,
    Rejection,
    TelemetryMessage,
    WireEvent,
    check_event,
)
from shared.telemetry.privacy import UNKNOWN, Agent, CountryLookup, reduce_user_agent, visitor_hash
from shared.telemetry.salts import DailySalts

log = get_logger(__name__)

Publish = Callable[[dict[str, Any], dict[str, str]], "Future[str]"]
PUBLISH_TIMEOUT = 10.0
SERVER = Agent("server", "server", "server", False)
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")


def site_allowed(site: str, allowed: tuple[str, ...]) -> bool:
    """`site` is one of the configured sites (an entry `*.test` admits any name under `.test`)."""
    for entry in allowed:
        if entry.startswith("*.") and site.endswith(entry[1:]) and len(site) > len(entry) - 1:
            return True
        if site == entry:
            return True
    return False


@dataclass
class IngestResult:
    stream: Stream
    accepted: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    dropped_properties: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "accepted": self.accepted,
            "rejected": len(self.rejected),
            "errors": [r.public() for r in self.rejected],
            "dropped_properties": self.dropped_properties,
        }


class IngestService:
    def __init__(
        self,
        settings: Settings,
        publish: Publish,
        salts: DailySalts,
        countries: CountryLookup,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.publish = publish
        self.salts = salts
        self.countries = countries
        self.clock = clock

    def track(self, account_id: str, events: list[dict[str, Any]]) -> IngestResult:
        """Product events emitted by another backend function for `account_id` (same checks, same topic).

        There is no client here: the context says "server" and no country is looked up.
        """
        return self.ingest(events=events, ip="", user_agent="", account_id=account_id, server=True)

    def ingest(
        self,
        *,
        events: list[Any],
        ip: str,
        user_agent: str,
        site: str | None = None,
        account_id: str | None = None,
        server: bool = False,
        objected: bool = False,
    ) -> IngestResult:
        """Check, reduce and publish one batch. `account_id` (a signed-in caller) makes it product telemetry.

        `objected`: the account objected to product analytics (GDPR Art. 21, P26): its events are
        answered like any batch and published nowhere.
        """
        stream: Stream = PRODUCT if account_id else WEB
        if stream == PRODUCT and objected:
            return IngestResult(stream)
        if stream == WEB:
            site = (site or "").strip().lower().removeprefix("www.")
            if not site:
                raise InvalidInput("site-required", "Anonymous events name their site.", title="Site required")
            if not _HOST.match(site) or not site_allowed(site, self.settings.telemetry_sites):
                raise InvalidInput("unknown-site", "This site does not send analytics here.", title="Unknown site")
        else:
            site = PRODUCT_SITE
        now = self.clock()
        result = IngestResult(stream)
        accepted: list[WireEvent] = []
        for index, raw in enumerate(events):
            checked = check_event(index, raw, stream, site, now)
            result.dropped_properties += checked.dropped
            if checked.rejection is not None:
                result.rejected.append(checked.rejection)
            elif checked.event is not None:
                accepted.append(checked.event)
        result.accepted = len(accepted)
        if not accepted:
            return result
        agent = SERVER if server else reduce_user_agent(user_agent)
        day = now.date()
        visitor = None
        if not agent.bot:
            salt = self.salts.salt(day)
            visitor = (
                visitor_hash(salt, "account", account_id or "")
                if stream == PRODUCT
                else visitor_hash(salt, ip, user_agent, site)
            )
        message = TelemetryMessage(
            stream=stream,
            site=site,
            day=day,
            received_at=now,
            visitor=visitor,
            account_id=account_id if stream == PRODUCT else None,
            context=Context(
                country=self.countries.country(ip) if ip else UNKNOWN,
                browser=agent.browser,
                os=agent.os,
                device=agent.device,
                bot=agent.bot,
            ),
            events=accepted,
        )
        try:
            self.publish(message.model_dump(mode="json", exclude_none=True), {"stream": stream}).result(
                timeout=PUBLISH_TIMEOUT
            )
        except Exception as exc:
            log.error("telemetry publish failed", error=type(exc).__name__, events=len(accepted))
            raise Unavailable(
                "The events could not be queued; send them again later.", slug="telemetry-unavailable", retry_after=30
            ) from None
        return result
