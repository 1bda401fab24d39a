"""Mail goes through the mail-outbox topic: a request never waits on SMTP, an SMTP outage loses no mail.

Services publish each mail to `mail-outbox` (shared/adapters/mail.py); the `mailer` function sends it
over SMTP, once per mail id, and a failed send is redelivered by Pub/Sub. Here the stack's SMTP sink
is stopped (a relay outage) while mail is sent, then started again.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from devstack.mail import message_text
from tests.support import Client, Mailbox, confirm_signup, link_token, new_email, new_password, signup

OUTBOX = "mail-outbox"


def _sink(stack: Any) -> Any:
    sink = getattr(stack, "smtp_sink", None)
    if sink is None:
        pytest.skip("needs the SMTP sink of a stack started by this session (not --devstack-reuse)")
    return sink


def _gateway_log(stack: Any) -> str:
    path = getattr(stack, "gateway_log", None)
    return path.read_text(errors="replace") if path and path.exists() else ""


def _wait_failures(stack: Any, since: int, at_least: int) -> int:
    """Failed SMTP sends logged by the mailer since offset `since` of the gateway log (waits for `at_least`)."""

    def failures() -> int:
        return _gateway_log(stack)[since:].count('"mail not sent"')

    deadline = time.monotonic() + 60
    while failures() < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    return failures()


@pytest.mark.policy("P16", "P25")
def test_a_signup_while_smtp_is_down_is_answered_at_once_and_its_link_mailed_once_smtp_is_back(
    stack: Any, client: Client, mailbox: Mailbox
) -> None:
    sink = _sink(stack)
    # A first sign-up while SMTP is up: the auth function and its Pub/Sub publisher are loaded.
    warm = new_email()
    signup(client, warm, new_password())
    mailbox.last(warm, "confirm your email", timeout=30)
    email, password = new_email(), new_password()
    log_before = len(_gateway_log(stack))
    sink.stop()
    try:
        began = time.monotonic()
        response = client.post(
            "/auth/signup", json={"email": email, "password": password, "first_name": "Ada", "last_name": "Lovelace"}
        )
        elapsed = time.monotonic() - began
        assert response.status_code == 202, response.text
        assert elapsed < 3, f"the request waited {elapsed:.1f}s: it must not wait on SMTP"

        # The mailer fails while the relay is down and Pub/Sub redelivers (the push was answered 5xx).
        failures = _wait_failures(stack, log_before, 2)
        assert failures >= 2, f"{failures} failed send(s) while SMTP was down: expected a redelivery"
        assert mailbox.count(email, "confirm your email") == 0
    finally:
        sink.start()

    message = mailbox.last(email, "confirm your email", timeout=60)
    time.sleep(3)  # a second delivery of the same mail id would land by now
    assert mailbox.count(email, "confirm your email") == 1, "the mail must be delivered exactly once"

    # The mail is whole: its single-use link confirms the sign-up; no mail body reached the logs.
    token = link_token(message)
    confirmed = confirm_signup(client, token, password)
    assert confirmed.status_code == 200, confirmed.text
    assert token not in _gateway_log(stack)


@pytest.mark.policy("P29")
def test_an_outbox_mail_published_twice_during_an_outage_is_sent_once_with_the_dpo_contact(
    stack: Any, mailbox: Mailbox
) -> None:
    sink = _sink(stack)
    to = new_email("outbox")
    subject = f"Outbox check {uuid.uuid4().hex[:8]}"
    payload = {"id": uuid.uuid4().hex, "to": to, "subject": subject, "text": "Hello.", "category": "transactional"}
    log_before = len(_gateway_log(stack))
    sink.stop()
    try:
        stack.publish(OUTBOX, payload)
        stack.publish(OUTBOX, payload)  # the same mail id again: Pub/Sub may deliver a message twice
        assert _wait_failures(stack, log_before, 2) >= 2
    finally:
        sink.start()

    message = mailbox.last(to, subject, timeout=60)
    time.sleep(3)
    assert mailbox.count(to, subject) == 1
    text = message_text(message)
    assert "Hello." in text
    assert "Data Protection Officer: dpo@wizyvision.com" in text and "data controller" in text
