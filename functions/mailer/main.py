"""The `mailer` Cloud Function: sends each mail of the mail-outbox topic over SMTP (P16, P25, P29).

Services queue mail with `OutboxMailer` (shared/adapters/mail.py); this function sends it with
`SmtpMailer`. Each mail id is claimed in `idempotency_records` (shared/idempotency.py) before the
send and marked completed after it, so a redelivery of a mail already sent sends nothing. An SMTP
failure marks the claim failed and raises: the push is answered 5xx and Pub/Sub redelivers with
backoff, then moves the message to `mail-outbox-dead-letter` (terraform/pubsub.tf). Log lines name
the category and the subject, never the body (it holds single-use links) nor the address.

Marketing mail (P18) passes the consent gate here, at send time, whoever queued it
(shared/consent/gate.py): it is sent only to an active account that consents and has not objected,
with its one-click unsubscribe link (RFC 8058); otherwise it is dropped (acknowledged, logged with its
category, subject and reason) and its id is marked done. Transactional mail is always sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import functions_framework
from cloudevents.http import CloudEvent

from shared.adapters.firestore import firestore_client
from shared.adapters.mail import MARKETING, Mail, OutboxMail, SmtpMailer
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


class Gate(Protocol):
    def admit(self, mail: Mail) -> tuple[Mail | None, str]: ...


def deliver(payload: OutboxMail, *, store: Store, smtp: Sender, gate: Callable[[], Gate] | None = None) -> bool:
    """Send the mail unless its id was sent already. True when sent now, False for a redelivery.

    A marketing mail goes through `gate()` first (no gate: refused); one it refuses is not sent (False).
    Raises on an SMTP failure (the claim is marked failed, the next delivery tries again) and
    `shared.idempotency.InProgress` while another delivery of the same id holds the claim.
    """
    claim = store.claim(f"mail:{payload.id}", scope=SCOPE)
    if isinstance(claim, Completed):
        log.info("mail already sent", category=payload.category, subject=payload.subject)
        return False
    try:
        mail = payload.mail()
        if mail.category == MARKETING:
            admitted, reason = gate().admit(mail) if gate is not None else (None, "no-consent-gate")
            if admitted is None:
                log.info("marketing mail not sent", category=payload.category, subject=payload.subject, reason=reason)
                store.complete(claim, {"sent": False, "reason": reason})
                return False
            mail = admitted
        smtp.send(mail)
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


class _MarketingGate:
    """The consent gate of this process, built on the first marketing mail (it needs the signing key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: Gate | None = None

    def __call__(self) -> Gate:
        if self._built is None:
            with self._lock:
                if self._built is None:
                    from shared.consent.gate import MarketingGate
                    from shared.consent.stores import FirestoreConsentStore
                    from shared.consent.tokens import UnsubscribeTokens
                    from shared.identity.stores import FirestoreAccounts

                    config = settings()
                    config.require_keys("unsubscribe_signing_key")
                    db = firestore_client(config.project_id)
                    self._built = MarketingGate(
                        FirestoreConsentStore(db),
                        FirestoreAccounts(db),
                        UnsubscribeTokens(config.unsubscribe_signing_key),
                        config.public_base_url,
                    )
        return self._built


marketing_gate = _MarketingGate()


def _handle(message: PubSubMessage, payload: OutboxMail) -> None:
    store, smtp = adapters()
    deliver(payload, store=store, smtp=smtp, gate=marketing_gate)


app = EventApp("mailer", OutboxMail, _handle)


@functions_framework.cloud_event
def mailer(cloud_event: CloudEvent) -> None:
    app.resolve(cloud_event)
