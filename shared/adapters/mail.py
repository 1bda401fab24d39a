"""Outgoing mail over SMTP (a local sink in development, the provider's relay in production).

Every message is built here so every message carries the controller's and the DPO's contact (P29).
The mailer never logs a body: bodies hold single-use links (P1).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from shared.config import Settings
from shared.http.problems import unavailable
from shared.observability import get_logger

log = get_logger(__name__)

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
        message.set_content(mail.text + FOOTER.format(dpo=s.dpo_email, support=s.support_email))
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
            raise unavailable("mail-unavailable", "Mail could not be sent; try again shortly.") from exc
        log.info("mail sent", category=mail.category, subject=mail.subject)
