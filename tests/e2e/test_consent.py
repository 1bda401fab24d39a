"""Marketing consent through the gateway, as a user and their mail client would use it (P18).

Consent is changed in the privacy settings, the monthly digest is run as Cloud Scheduler would (POST
/marketing-digest), marketing mail goes through the real outbox and mailer, and the one-click
unsubscribe is the RFC 8058 POST to the `List-Unsubscribe` URL read from the delivered mail.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devstack.mail import message_text
from tests.support import Client, Mailbox, signin, signup_and_verify

pytestmark = pytest.mark.policy("P18")

DIGEST = "WizyVision tips"


def account(client: Client, mailbox: Mailbox) -> tuple[Client, str, str]:
    email, password = signup_and_verify(client, mailbox)
    user = signin(client, email, password)
    me = user.get("/auth/me")
    assert me.status_code == 200, me.text
    return user, email, me.json()["id"]


def consent(user: Client) -> dict[str, Any]:
    answer = user.get("/privacy/consent")
    assert answer.status_code == 200, answer.text
    return answer.json()


def set_consent(user: Client, marketing: bool) -> dict[str, Any]:
    answer = user.request("PUT", "/privacy/consent", json={"marketing": marketing})
    assert answer.status_code == 200, answer.text
    return answer.json()


def run_digest(stack: Any) -> dict[str, int]:
    answer = requests.post(f"{stack.gateway_url}/marketing-digest", json={}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def quiet(mailbox: Mailbox, email: str, subject: str, seconds: float = 6.0) -> int:
    """The count of matching mails after a while in which a mail queued now would have arrived."""
    time.sleep(seconds)  # no event to poll for: this checks that nothing arrives
    return mailbox.count(email, subject)


def test_history_after_consent_on_then_off(client: Client, mailbox: Mailbox) -> None:
    user, _, _ = account(client, mailbox)
    before = consent(user)
    assert before["marketing"] is False  # default: no consent
    assert set_consent(user, True)["marketing"] is True
    after = set_consent(user, False)
    assert after["marketing"] is False and after["source"] == "settings"
    changes = [(h["marketing"], h["source"], h["by"]) for h in consent(user)["history"] if h["source"] == "settings"]
    assert changes == [(True, "settings", "holder"), (False, "settings", "holder")]
    refused = user.request("PUT", "/privacy/consent", json={"marketing": "yes"})
    assert refused.status_code == 422
    assert client.get("/privacy/consent").status_code == 401


def test_one_click_unsubscribe_from_the_delivered_mail(stack: Any, client: Client, mailbox: Mailbox) -> None:
    user, email, account_id = account(client, mailbox)
    set_consent(user, True)
    run_digest(stack)
    message = mailbox.last(email, DIGEST, timeout=30)
    assert message["X-Mail-Category"] == "marketing"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    found = re.fullmatch(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
    assert found, message["List-Unsubscribe"]
    url = found.group(1)
    parts = urlsplit(url)
    assert parts.path.startswith("/privacy/unsubscribe/") and not parts.query and not parts.fragment
    assert url in message_text(message)  # the text body shows the link too
    path = parts.path

    # A mail scanner or a link preview fetches the link: nothing changes.
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Unsubscribe" in page.text and path in page.text
    assert client.request("HEAD", path).status_code == 200
    assert consent(user)["marketing"] is True

    # The mail client's RFC 8058 one-click POST, without a session.
    anonymous = Client(stack.gateway_url)
    body = "List-Unsubscribe=One-Click"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = anonymous.post(path, data=body, headers=form)
    assert answer.status_code == 200, answer.text
    assert answer.json()["marketing"] is False
    assert anonymous.post(path, data=body, headers=form).status_code == 200  # again: idempotent
    now = consent(user)
    assert now["marketing"] is False and now["source"] == "unsubscribe-link"
    assert [h["source"] for h in now["history"]][-2:] == ["unsubscribe-link", "unsubscribe-link"]
    assert now["history"][-1]["by"] == "link"
    assert anonymous.post(path, data="List-Unsubscribe=Maybe", headers=form).status_code == 422
    assert account_id in path  # the link names the one account it can unsubscribe


def test_a_forged_or_altered_unsubscribe_link_is_refused(stack: Any, client: Client, mailbox: Mailbox) -> None:
    user, _, account_id = account(client, mailbox)
    set_consent(user, True)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = f"v1.{account_id}.{secrets.token_urlsafe(32)}"
    for token in (forged, "v1.nobody", "garbage"):
        for method in ("POST", "GET"):
            answer = client.request(
                method, f"/privacy/unsubscribe/{token}", data="List-Unsubscribe=One-Click", headers=form
            )
            assert answer.status_code == 400, answer.text
            assert answer.headers["Content-Type"].startswith("application/problem+json")
            assert answer.json()["type"].endswith("/invalid-token")
    assert consent(user)["marketing"] is True


def test_marketing_is_never_sent_without_consent_but_transactional_mail_always(
    stack: Any, client: Client, mailbox: Mailbox
) -> None:
    user, email, account_id = account(client, mailbox)
    tag = secrets.token_hex(4)
    marketing = {"to": email, "subject": f"Offer {tag}", "text": "Buy now", "category": "marketing"}
    # Straight onto the outbox, as any buggy caller could: the mailer still checks consent at send time.
    stack.publish("mail-outbox", {**marketing, "id": f"m-{tag}-1", "account_id": account_id})
    stack.publish("mail-outbox", {**marketing, "id": f"m-{tag}-2"})  # marketing without an account
    stack.publish(
        "mail-outbox",
        {"id": f"t-{tag}", "to": email, "subject": f"Receipt {tag}", "text": "Thanks", "account_id": account_id},
    )
    mailbox.last(email, f"Receipt {tag}", timeout=30)  # transactional: sent whatever the consent
    run_digest(stack)
    assert quiet(mailbox, email, f"Offer {tag}") == 0
    assert mailbox.count(email, DIGEST) == 0

    set_consent(user, True)
    stack.publish("mail-outbox", {**marketing, "id": f"m-{tag}-3", "account_id": account_id})
    assert mailbox.last(email, f"Offer {tag}", timeout=30)["List-Unsubscribe"]


def test_the_digest_runs_once_per_month(stack: Any, client: Client, mailbox: Mailbox) -> None:
    user, email, _ = account(client, mailbox)
    set_consent(user, True)
    first = run_digest(stack)
    mailbox.last(email, DIGEST, timeout=30)
    second = run_digest(stack)
    assert first["sent"] >= 1 and second["already_sent"] >= 1
    assert quiet(mailbox, email, DIGEST) == 1
