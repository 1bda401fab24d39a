"""Pub/Sub emulator set-up over its REST API: topics and push subscriptions."""

from __future__ import annotations

import base64
import json

from devstack.errors import DevstackError
from devstack.http import request


def _check(what: str, status: int, text: str, ok: tuple[int, ...] = (200,)) -> None:
    if status not in ok:
        raise DevstackError(f"Pub/Sub emulator: {what} failed: HTTP {status} {text[:300]}")


def create_topic(host: str, project: str, topic: str) -> None:
    """Create ``topic`` (idempotent). ``host`` is ``127.0.0.1:PORT``."""
    resp = request("PUT", f"http://{host}/v1/projects/{project}/topics/{topic}", body={})
    _check(f"creating topic {topic}", resp.status, resp.text, ok=(200, 409))


# A push answered 5xx (or not answered) is redelivered after a backoff growing from 1 s to 10 s (the
# emulator honours it; without one it redelivers about every second). terraform/pubsub.tf uses 10 s
# to 10 min in production.
RETRY_POLICY = {"minimumBackoff": "1s", "maximumBackoff": "10s"}


def create_push_subscription(host: str, project: str, topic: str, subscription: str, endpoint: str) -> None:
    """Create (or re-point) a push subscription of ``topic`` to ``endpoint``, retrying with backoff."""
    base = f"http://{host}/v1/projects/{project}/subscriptions/{subscription}"
    push = {"pushEndpoint": endpoint}
    resp = request(
        "PUT",
        base,
        body={
            "topic": f"projects/{project}/topics/{topic}",
            "pushConfig": push,
            "ackDeadlineSeconds": 60,
            "retryPolicy": RETRY_POLICY,
        },
    )
    if resp.status == 409:  # kept from an earlier run (make run keeps the emulator's data)
        resp = request("POST", f"{base}:modifyPushConfig", body={"pushConfig": push})
        if resp.status == 200:
            body = {"subscription": {"retryPolicy": RETRY_POLICY}, "updateMask": "retryPolicy"}
            resp = request("PATCH", base, body=body)
    _check(f"creating push subscription {subscription}", resp.status, resp.text)


def publish(
    host: str,
    project: str,
    topic: str,
    data: bytes | str | dict[str, object],
    attributes: dict[str, str] | None = None,
) -> str:
    """Publish one message; returns its message id."""
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    message: dict[str, object] = {"data": base64.b64encode(data).decode()}
    if attributes:
        message["attributes"] = attributes
    resp = request(
        "POST",
        f"http://{host}/v1/projects/{project}/topics/{topic}:publish",
        body={"messages": [message]},
    )
    _check(f"publishing to {topic}", resp.status, resp.text)
    return str(resp.json()["messageIds"][0])
