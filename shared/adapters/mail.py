"""Outgoing mail: queued on the `mail-outbox` topic, sent over SMTP by the `mailer` function.

Services send through `OutboxMailer` (`outbox_mailer(settings)`): it publishes the mail, with a unique
mail id, to the `mail-outbox` Pub/Sub topic and returns once Pub/Sub has stored it, so a request never
waits on SMTP and an SMTP outage loses no mail. The `mailer` function (functions/mailer/) sends each
queued mail with `SmtpMailer` (a local sink in development, the provider's relay in production), once
per mail id; an SMTP failure is retried by Pub/Sub.

Every message is built here so every message carries the controller's and the DPO's contact (P29).
No mailer logs a body: bodies hold single-use links (P1). Log lines name the category and subject.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.config import Settings
from shared.errors import Unavailable
from shared.observability import get_logger

log = get_logger(__name__)

MARKETING = "marketing"  # the category the mailer sends only with consent (P18)

FOOTER = (
    "\n\n--\nWizyVision SAS, 16-18 rue de Londres, 75009 Paris, France (data controller).\n"
    "Data Protection Officer: {dpo}. Support: {support}.\n"
)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    category: str = "transactional"  # transactional | security | privacy | marketing
    # Marketing only (P18): the account the mail is for; the mailer sends it only when that account
    # consents, has not objected and is active (shared/consent/gate.py). Refused without it.
    account_id: str | None = None
    # Set by the mailer's consent gate, never by a caller: the one-click unsubscribe link (RFC 8058).
    unsubscribe_url: str | None = None


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


class SmtpMailer:
    """Sends each mail on its own short SMTP connection (thread-safe, nothing held between calls)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def build(self, mail: Mail) -> EmailMessage:
        s = self._settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="wizyvision.com")
        message["X-Mail-Category"] = mail.category
        message["Auto-Submitted"] = "auto-generated"
        text = mail.text
        if mail.category == MARKETING:
            # Every marketing mail carries one-click unsubscribe (RFC 8058, RFC 2369) and shows the link.
            if not mail.unsubscribe_url:
                raise ValueError("a marketing mail needs its unsubscribe link (shared/consent/gate.py)")
            message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            text += f"\n\nNo more of these mails? Unsubscribe in one click: {mail.unsubscribe_url}"
        message.set_content(text + FOOTER.format(dpo=s.dpo_email, support=s.support_email))
        return message

    def send(self, mail: Mail) -> None:
        s = self._settings
        message = self.build(mail)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error(
                "mail not sent",
                category=mail.category,
                subject=mail.subject,
                error=type(exc).__name__,
            )
            raise Unavailable("Mail could not be sent; try again shortly.", slug="mail-unavailable") from exc
        log.info("mail sent", category=mail.category, subject=mail.subject)


# --- The outbox ------------------------------------------------------------------------------------

OUTBOX_TOPIC = "mail-outbox"
OUTBOX_PUBLISH_TIMEOUT_SECONDS = 10.0

# publish(topic, payload, attributes) -> message id, once Pub/Sub stored the message.
Publish = Callable[[str, dict[str, Any], dict[str, str]], str]


class OutboxMail(BaseModel):
    """One message of the `mail-outbox` topic: a mail and its unique id (the mailer sends each id once)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    to: str = Field(min_length=1)
    subject: str
    text: str
    category: str = "transactional"
    account_id: str | None = Field(default=None, max_length=64)

    def mail(self) -> Mail:
        return Mail(
            to=self.to, subject=self.subject, text=self.text, category=self.category, account_id=self.account_id
        )


def new_mail_id() -> str:
    return uuid.uuid4().hex


class OutboxMailer:
    """Publishes each mail to the `mail-outbox` topic (thread-safe); the `mailer` function sends it."""

    def __init__(
        self, settings: Settings, publish: Publish | None = None, new_id: Callable[[], str] = new_mail_id
    ) -> None:
        self._settings = settings
        self._publish = publish or self._publish_and_wait
        self._new_id = new_id

    def _publish_and_wait(self, topic: str, payload: dict[str, Any], attributes: dict[str, str]) -> str:
        from shared.adapters.pubsub import publish_and_wait  # loaded on the first mail only

        return publish_and_wait(
            self._settings.project_id, topic, payload, timeout=OUTBOX_PUBLISH_TIMEOUT_SECONDS, **attributes
        )

    def send(self, mail: Mail) -> None:
        fields = asdict(mail)
        fields.pop("unsubscribe_url")  # the mailer's gate sets it as it sends, for the account it checked
        message = OutboxMail(id=self._new_id(), **fields)
        try:
            self._publish(OUTBOX_TOPIC, message.model_dump(), {"mail_id": message.id, "category": mail.category})
        except Exception as exc:  # Pub/Sub unreachable, topic missing, timeout: the caller answers 503
            log.error(
                "mail not queued",
                category=mail.category,
                subject=mail.subject,
                error=type(exc).__name__,
            )
            raise Unavailable("Mail could not be queued; try again shortly.", slug="mail-unavailable") from exc
        log.info("mail queued", category=mail.category, subject=mail.subject, mail_id=message.id)


def outbox_mailer(settings: Settings) -> OutboxMailer:
    """The mailer every service sends with (shared/bootstrap.py)."""
    return OutboxMailer(settings)
