"""The `mailer` Cloud Function: sends each mail of the mail-outbox topic over SMTP (P16, P25, P29).

Services queue mail with `OutboxMailer` (shared/adapters/mail.py); this function sends it with
`SmtpMailer`. Each mail id is claimed in `idempotency_records` (shared/idempotency.py) before the
send and marked completed after it, so a redelivery of a mail already sent sends nothing. An SMTP
failure marks the claim failed and raises: the push is answered 5xx and Pub/Sub redelivers with
backoff, then moves the message to `mail-outbox-dead-letter` (terraform/pubsub.tf). Log lines name
the category and the subject, never the body (it holds single-use links) nor the address.
"""

from __future__ import annotations

import threading
from typing import Protocol

import functions_framework
from cloudevents.http import CloudEvent

from shared.adapters.firestore import firestore_client
from shared.adapters.mail import Mail, OutboxMail, SmtpMailer
from shared.bootstrap import settings
from shared.events import EventApp, PubSubMessage
from shared.idempotency import Claim, Completed, IdempotencyStore
from shared.observability import get_logger

TRIGGER_TOPIC = "mail-outbox"
SCOPE = "mail"

log = get_logger(__name__)


class Sender(Protocol):
    def send(self, mail: Mail) -> None: ...


class Store(Protocol):
    def claim(self, key: str, *, scope: str = "") -> Claim | Completed: ...
    def complete(self, claim: Claim, result: dict[str, object] | None = None) -> bool: ...
    def fail(self, claim: Claim, error: str) -> bool: ...


def deliver(payload: OutboxMail, *, store: Store, smtp: Sender) -> bool:
    """Send the mail unless its id was sent already. True when sent now, False for a redelivery.

    Raises on an SMTP failure (the claim is marked failed, the next delivery tries again) and
    `shared.idempotency.InProgress` while another delivery of the same id holds the claim.
    """
    claim = store.claim(f"mail:{payload.id}", scope=SCOPE)
    if isinstance(claim, Completed):
        log.info("mail already sent", category=payload.category, subject=payload.subject)
        return False
    try:
        smtp.send(payload.mail())
    except Exception as exc:
        try:
            store.fail(claim, type(exc).__name__)
        except Exception:  # the store is down too: the lease runs out and the next delivery claims it
            log.warning("mail claim not marked failed", category=payload.category, subject=payload.subject)
        raise
    store.complete(claim, {"sent": True})
    return True


class _Adapters:
    """The SMTP mailer and the idempotency store of this process, built on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[IdempotencyStore, SmtpMailer] | None = None

    def __call__(self) -> tuple[IdempotencyStore, SmtpMailer]:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    config = settings()
                    self._built = (IdempotencyStore(firestore_client(config.project_id)), SmtpMailer(config))
        return self._built


adapters = _Adapters()


def _handle(message: PubSubMessage, payload: OutboxMail) -> None:
    store, smtp = adapters()
    deliver(payload, store=store, smtp=smtp)


app = EventApp("mailer", OutboxMail, _handle)


@functions_framework.cloud_event
def mailer(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
