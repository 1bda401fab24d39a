"""The mail outbox: `OutboxMailer` queues, the `mailer` function sends each mail id once (P16, P25, P29).

Verification and reset links (P16, P25) must reach their owner through an SMTP outage, once each;
every mail carries the controller's and the DPO's contact (P29). No mail body is ever logged.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from devstack.mail import SmtpSink, message_text, read_messages
from devstack.procs import free_port
from functions.mailer import main as mailer
from shared.adapters.mail import OUTBOX_TOPIC, Mail, OutboxMail, OutboxMailer, SmtpMailer
from shared.config import Settings
from shared.errors import Unavailable
from shared.idempotency import COMPLETED, FAILED, IN_PROGRESS, Claim, Completed, InProgress

pytestmark = pytest.mark.policy("P16", "P25")

BODY = "Reset your password: https://app.example/reset?token=single-use-secret-link"


def settings(**changes: Any) -> Settings:
    base = Settings(
        project_id="demo-unit",
        app_env="local",
        public_base_url="http://localhost:8080",
        app_url="http://localhost:8080",
        password_pepper=b"p" * 32,
        totp_encryption_key=b"k" * 32,
    )
    return Settings(**{**base.__dict__, **changes})


class MemoryStore:
    """The claim / complete / fail contract of shared.idempotency.IdempotencyStore, in memory."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def claim(self, key: str, *, scope: str = "") -> Claim | Completed:
        record = self.records.get(key, {})
        if record.get("status") == COMPLETED:
            return Completed(key, record["result"])
        if record.get("status") == IN_PROGRESS:
            raise InProgress(key, 60)
        token = secrets.token_hex(8)
        attempts = record.get("attempts", 0) + 1
        self.records[key] = {"status": IN_PROGRESS, "token": token, "attempts": attempts, "scope": scope}
        return Claim(key, token, attempts, datetime.now(UTC) + timedelta(minutes=2))

    def complete(self, claim: Claim, result: dict[str, Any] | None = None) -> bool:
        self.records[claim.key].update(status=COMPLETED, result=result)
        return True

    def fail(self, claim: Claim, error: str) -> bool:
        self.records[claim.key].update(status=FAILED, error=error)
        return True


class FlakySmtp:
    """Records what it sends; raises like SmtpMailer while `down`."""

    def __init__(self) -> None:
        self.sent: list[Mail] = []
        self.down = False

    def send(self, mail: Mail) -> None:
        if self.down:
            raise Unavailable("Mail could not be sent; try again shortly.", slug="mail-unavailable")
        self.sent.append(mail)


def outbox_mail(mail_id: str = "m-1") -> OutboxMail:
    return OutboxMail(id=mail_id, to="ada@example.com", subject="Reset your password", text=BODY, category="security")


def test_a_redelivered_mail_id_is_sent_once() -> None:
    store, smtp = MemoryStore(), FlakySmtp()
    assert mailer.deliver(outbox_mail(), store=store, smtp=smtp) is True
    assert mailer.deliver(outbox_mail(), store=store, smtp=smtp) is False
    assert mailer.deliver(outbox_mail("m-2"), store=store, smtp=smtp) is True
    assert [m.text for m in smtp.sent] == [BODY, BODY]
    assert store.records["mail:m-1"]["scope"] == "mail"


def test_an_smtp_failure_raises_for_redelivery_and_the_next_delivery_sends() -> None:
    store, smtp = MemoryStore(), FlakySmtp()
    smtp.down = True
    with pytest.raises(Unavailable):
        mailer.deliver(outbox_mail(), store=store, smtp=smtp)
    assert store.records["mail:m-1"]["status"] == FAILED
    smtp.down = False
    assert mailer.deliver(outbox_mail(), store=store, smtp=smtp) is True
    assert mailer.deliver(outbox_mail(), store=store, smtp=smtp) is False
    assert len(smtp.sent) == 1 and store.records["mail:m-1"]["attempts"] == 2


def test_a_delivery_while_another_one_sends_the_same_id_is_retried_later() -> None:
    store, smtp = MemoryStore(), FlakySmtp()
    store.claim("mail:m-1", scope="mail")  # another instance is sending it
    with pytest.raises(InProgress):
        mailer.deliver(outbox_mail(), store=store, smtp=smtp)
    assert not smtp.sent


def test_the_function_sends_over_smtp_once_and_logs_no_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    store = MemoryStore()
    smtp = SmtpMailer(settings(smtp_port=port))
    monkeypatch.setattr(mailer, "adapters", lambda: (store, smtp))
    data = base64.b64encode(json.dumps(outbox_mail("m-9").model_dump()).encode()).decode()
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/t", "id": "e-1"},
        {"message": {"data": data, "messageId": "p-1"}, "subscription": "projects/p/subscriptions/s"},
    )
    with SmtpSink(tmp_path, port):
        mailer.app.resolve(event)
        mailer.app.resolve(event)  # a redelivery
        messages = read_messages(tmp_path)

    assert len(messages) == 1
    text = message_text(messages[0])
    assert BODY in text
    assert "Data Protection Officer: dpo@wizyvision.com" in text  # P29
    ours = [r for r in caplog.records if r.name.startswith(("shared.", "functions."))]  # not the sink's own log
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in ours)
    assert "mail sent" in logged and "mail already sent" in logged
    assert "single-use-secret-link" not in logged and "ada@example.com" not in logged


@pytest.mark.policy("P29")
def test_the_outbox_mailer_publishes_each_mail_with_a_unique_id_and_never_speaks_smtp() -> None:
    published: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    outbox = OutboxMailer(settings(smtp_port=1), publish=lambda t, p, a: published.append((t, p, a)) or "1")
    mail = Mail(to="ada@example.com", subject="Reset your password", text=BODY, category="security")
    outbox.send(mail)
    outbox.send(mail)

    assert [t for t, _, _ in published] == [OUTBOX_TOPIC, OUTBOX_TOPIC]
    ids = [p["id"] for _, p, _ in published]
    assert len(set(ids)) == 2 and all(ids)
    for _, payload, attributes in published:
        assert OutboxMail.model_validate(payload).mail() == mail
        assert attributes == {"mail_id": payload["id"], "category": "security"}


def test_a_mail_that_cannot_be_queued_is_a_503_that_logs_no_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def down(_topic: str, _payload: dict[str, Any], _attributes: dict[str, str]) -> str:
        raise TimeoutError("pubsub unreachable")

    outbox = OutboxMailer(settings(), publish=down)
    with pytest.raises(Unavailable) as refused:
        outbox.send(Mail(to="ada@example.com", subject="Reset your password", text=BODY))
    assert refused.value.code == "mail-unavailable"
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "mail not queued" in logged and "single-use-secret-link" not in logged
