"""The Pub/Sub CloudEvent envelope used by every event function (P6, P12)."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from cloudevents.http import CloudEvent
from pydantic import BaseModel, ConfigDict

from shared.events import EventApp, PoisonMessage, unwrap

pytestmark = pytest.mark.policy("P12")


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: str
    step: int


def event(data: object, **message: object) -> CloudEvent:
    body = {
        "message": {"data": data, "messageId": "m-1", "publishTime": "2026-11-30T10:00:00.5Z", **message},
        "subscription": "projects/p/subscriptions/s",
    }
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/projects/p/topics/t", "id": "e1"},
        body,
    )


def b64(payload: object) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_unwraps_the_pubsub_message() -> None:
    message = unwrap(event(b64({"request_id": "r", "step": 2}), attributes={"kind": "erasure"}))
    assert message.message_id == "m-1" and message.attributes == {"kind": "erasure"}
    assert json.loads(message.data) == {"request_id": "r", "step": 2}
    assert message.publish_time is not None and message.publish_time.year == 2026


def test_the_handler_gets_the_parsed_payload() -> None:
    seen: list[tuple[str, Job]] = []
    EventApp("demo", Job, lambda m, p: seen.append((m.message_id, p))).resolve(
        event(b64({"request_id": "r", "step": 1}))
    )
    assert seen == [("m-1", Job(request_id="r", step=1))]


@pytest.mark.parametrize(
    "data",
    ["%%%not-base64%%%", b64("not an object"), b64({"request_id": "r"}), b64({"request_id": "r", "step": 1, "x": 1})],
)
def test_poison_messages_are_acknowledged_with_an_alert(data: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    called: list[object] = []
    EventApp("demo", Job, lambda m, p: called.append(p)).resolve(event(data))
    assert not called
    alerts = [r for r in caplog.records if getattr(r, "fields", {}).get("alert") == "poison-message"]
    assert alerts, "a poison message raises an alert instead of looping"


def test_transient_failures_propagate_for_redelivery() -> None:
    def boom(_m: object, _p: object) -> None:
        raise ConnectionError("firestore unavailable")

    with pytest.raises(ConnectionError):
        EventApp("demo", Job, boom).resolve(event(b64({"request_id": "r", "step": 1})))


def test_an_event_without_a_message_is_poison() -> None:
    with pytest.raises(PoisonMessage):
        unwrap(CloudEvent({"type": "t", "source": "s", "id": "x"}, {"nothing": True}))
