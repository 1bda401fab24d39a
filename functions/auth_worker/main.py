"""The `auth-worker` Cloud Function: the identity requests whose work depends on the address (P22).

`POST /auth/password/forgot` and `/auth/verify-email/resend` answer at once, doing the same work for
every address: they queue `{kind, payload}` here. This worker looks the address up and mails a
reset link or a new verification link when there is something to send. Idempotent by message id
(`shared/idempotency.py`): a redelivered message sends no second mail and voids no link.
"""

from __future__ import annotations

from typing import Literal

import functions_framework
from cloudevents.http import CloudEvent
from pydantic import BaseModel, ConfigDict

from shared.adapters.firestore import firestore_client
from shared.bootstrap import identity_service, settings
from shared.events import EventApp, PubSubMessage
from shared.idempotency import IdempotencyStore

TRIGGER_TOPIC = "auth-requests"


class EmailPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str


class AuthRequest(BaseModel):
    """What the auth function queues; anything else is a poison message (acknowledged, alerted)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["password_reset", "verification_resend"]
    payload: EmailPayload


def _handle(message: PubSubMessage, request: AuthRequest) -> None:
    config = settings()
    store = IdempotencyStore(firestore_client(config.project_id))
    store.run(
        f"pubsub:auth-requests:{message.message_id}",
        lambda: identity_service().handle_request(request.kind, request.payload.model_dump()) or {},
        scope="auth-requests",
    )


app = EventApp("auth-worker", AuthRequest, _handle)


@functions_framework.cloud_event
def auth_worker(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
