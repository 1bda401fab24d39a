"""The `telemetry-aggregator` Cloud Function: folds `telemetry-events` messages into daily counters (P12, P23)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared import bootstrap
from shared.events import EventApp, PubSubMessage
from shared.telemetry.model import TelemetryMessage

TRIGGER_TOPIC = "telemetry-events"


def handle(message: PubSubMessage, payload: TelemetryMessage) -> None:
    bootstrap.telemetry_aggregate_service().fold(message.message_id, payload)


app = EventApp("telemetry-aggregator", TelemetryMessage, handle)


@functions_framework.cloud_event
def telemetry_aggregator(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
