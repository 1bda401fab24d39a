"""Pub/Sub CloudEvents for event-triggered functions, in the manner of Lambda Powertools envelopes.

An event function's entry point stays one line (`return app.resolve(cloud_event)`). The envelope
unwraps the transport (the Pub/Sub message inside the CloudEvent: base64 data, attributes, message
id, publish time) and parses the payload into a pydantic model.

Outcome rules (Pub/Sub redelivers whatever is not acknowledged):
- a payload that is not valid JSON or does not fit the model can never succeed: it is logged as an
  alert (message id and reason, never the payload) and acknowledged, so it does not loop;
- any other exception propagates: the push is answered 5xx, Pub/Sub retries with backoff and, past
  the subscription's maximum attempts, moves the message to its dead-letter topic (terraform/).
Handlers must be idempotent (see shared/idempotency.py): a redelivery changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from shared.observability import get_logger, log_context

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


class PoisonMessage(ValueError):
    """The message can never be processed; acknowledge it and raise an alert."""


@dataclass(frozen=True)
class PubSubMessage:
    message_id: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: datetime | None = None
    delivery_attempt: int | None = None
    subscription: str = ""


def unwrap(cloud_event: CloudEvent) -> PubSubMessage:
    """The Pub/Sub message carried by a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent."""
    body = cloud_event.get_data() or {}
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise PoisonMessage("the CloudEvent data is not JSON") from exc
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        raise PoisonMessage("the CloudEvent carries no Pub/Sub message")
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PoisonMessage("the message data is not base64") from exc
    published = message.get("publishTime") or message.get("publish_time")
    return PubSubMessage(
        message_id=str(message.get("messageId") or message.get("message_id") or cloud_event["id"]),
        data=data,
        attributes={str(k): str(v) for k, v in (message.get("attributes") or {}).items()},
        publish_time=datetime.fromisoformat(published.replace("Z", "+00:00")) if published else None,
        delivery_attempt=body.get("deliveryAttempt"),
        subscription=str(body.get("subscription") or ""),
    )


def parse(message: PubSubMessage, model: type[M]) -> M:
    try:
        return model.model_validate_json(message.data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)})
        raise PoisonMessage(f"the payload does not fit {model.__name__}: {', '.join(fields) or 'body'}") from exc


class EventApp(Generic[M]):
    """Resolves one Pub/Sub CloudEvent to a handler taking (message, payload)."""

    def __init__(self, name: str, model: type[M], handler: Callable[[PubSubMessage, M], Any]) -> None:
        self.name = name
        self.model = model
        self.handler = handler

    def resolve(self, cloud_event: CloudEvent) -> None:
        with log_context(None, None, function=self.name, event_id=cloud_event["id"]):
            try:
                message = unwrap(cloud_event)
                payload = parse(message, self.model)
            except PoisonMessage as exc:
                log.alert("poison message acknowledged", alert_name="poison-message", reason=str(exc))
                return
            self.handler(message, payload)
