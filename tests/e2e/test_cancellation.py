"""Account cancellation end to end (P19): the holder with a step-up, staff through the admin API and the CLI.

A cancelled account keeps its data until its purge date (P27) and nothing else: its sessions end, its
Stripe subscription stops renewing (localstripe is Stripe here), it produces no telemetry archive,
the holder is mailed the purge date, and signing in (confirmed with `reactivate: true`) brings it back.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.mail import message_text
from shared.audit import AUDIT_LOG
from shared.billing.model import BILLING_ACCOUNTS
from shared.identity.model import ACCOUNTS
from shared.retention.policy import add_months
from tests.e2e.telemetry_support import counters, push
from tests.stripe_support import add_card, ensure_plans, localstripe, subscribe
from tests.support import Client, Mailbox, poll, run_cli, signin, signup_and_verify, staff_session

pytestmark = pytest.mark.policy("P19")


def _db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


def _user(client: Client, mailbox: Mailbox) -> tuple[Client, str, str, str]:
    email, password = signup_and_verify(client, mailbox)
    authed = signin(client, email, password)
    return authed, email, password, authed.get("/auth/me").json()["id"]


def _purge_day(before: datetime, after: datetime) -> set[str]:
    """The purge date of a cancellation made between `before` and `after`: 12 months later (P27)."""
    return {add_months(before, 12).date().isoformat(), add_months(after, 12).date().isoformat()}


def _assert_cancelled(stack: Any, account_id: str, purge_at: str) -> dict[str, Any]:
    doc = _db(stack).collection(ACCOUNTS).document(account_id).get().to_dict() or {}
    assert doc["status"] == "cancelled" and doc["cancelled_at"] is not None
    assert doc["purge_at"] == datetime.fromisoformat(purge_at)
    assert doc["purge_warning_at"] < doc["purge_at"]
    return doc


@pytest.fixture(scope="module")
def ls(stack: Any) -> stripe.StripeClient:
    if "STRIPE_API_BASE" not in stack.env:
        pytest.skip("this stack runs no localstripe (restart make run)")
    client = localstripe(dict(stack.env))
    ensure_plans(client)
    return client


@pytest.mark.policy("P19", "P25", "P27", "P21")
def test_the_holder_cancels_with_a_step_up_and_signing_in_reactivates(
    client: Client, mailbox: Mailbox, stack: Any, ls: stripe.StripeClient
) -> None:
    authed, email, password, account_id = _user(client, mailbox)
    other_device = signin(client.clone(ip="203.0.113.9", user_agent="Other/1.0"), email, password)
    # A paying customer: the subscription arrives by localstripe's webhook.
    customer_id = ls.v1.customers.create(params={"email": email, "metadata": {"account_id": account_id}}).id
    add_card(ls, customer_id)
    sub = subscribe(ls, customer_id, "price_pro_monthly", account_id)
    poll(lambda: authed.get("/billing").json()["plan"] == "pro", what="the pro plan")

    # A session token alone cancels nothing (P25); a wrong password neither.
    refused = authed.post("/privacy/cancel-account", json={})
    assert refused.status_code == 403 and refused.json()["type"].endswith("/reauthentication-required")
    wrong = authed.post("/privacy/cancel-account", json={"current_password": password + "x"})
    assert wrong.status_code == 403
    assert client.post("/privacy/cancel-account", json={"current_password": password}).status_code == 401
    assert authed.get("/auth/me").status_code == 200

    before = datetime.now(UTC)
    response = authed.post("/privacy/cancel-account", json={"current_password": password})
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"status", "purge_at"} and answer["status"] == "cancelled"
    assert answer["purge_at"][:10] in _purge_day(before, after)
    _assert_cancelled(stack, account_id, answer["purge_at"])

    # Every session ended (P21).
    assert authed.get("/auth/me").status_code == 401
    assert other_device.get("/auth/me").status_code == 401

    # The subscription runs to the end of its period, then stops (at Stripe and on the billing account).
    assert ls.v1.subscriptions.retrieve(sub["id"]).to_dict()["cancel_at_period_end"] is True
    billing = _db(stack).collection(BILLING_ACCOUNTS).document(account_id).get().to_dict() or {}
    assert billing["cancel_at_period_end"] is True
    assert billing["subscriptions"][sub["id"]]["cancel_at_period_end"] is True

    # The holder is told the purge date, and how to keep the account.
    mail = mailbox.last(email, "account is cancelled")
    text = message_text(mail)
    assert answer["purge_at"][:10] in str(mail["Subject"]) and f"Sign in before {answer['purge_at'][:10]}" in text
    assert mail["X-Mail-Category"] == "transactional"

    # Signing in: refused until the holder confirms, with the purge date; confirmed, the account is back.
    signing = client.post("/auth/signin", json={"email": email, "password": password})
    assert signing.status_code == 409, signing.text
    assert signing.json()["type"].endswith("/account-cancelled") and datetime.fromisoformat(
        signing.json()["purge_at"]
    ) == datetime.fromisoformat(answer["purge_at"])
    reactivating = datetime.now(UTC)
    back = signin(client, email, password, reactivate=True)
    assert back.get("/auth/me").status_code == 200
    doc = _db(stack).collection(ACCOUNTS).document(account_id).get().to_dict() or {}
    assert doc["status"] == "active" and doc.get("cancelled_at") is None
    assert doc["purge_at"] >= add_months(reactivating, 12).replace(microsecond=0)  # recomputed from now
    kinds = [e["type"] for e in back.get("/auth/security-events").json()["events"]]
    assert "account_cancelled" in kinds and "account_reactivated" in kinds


@pytest.mark.policy("P19", "P10", "P12")
def test_staff_cancel_through_the_admin_api_audited_idempotent_and_without_telemetry_archive(
    client: Client, mailbox: Mailbox, stack: Any
) -> None:
    holder, email, _, account_id = _user(client, mailbox)
    support, support_id = staff_session(client, stack, "support")
    outsider, outsider_id = staff_session(client, stack)  # signed in, no role
    path = f"/admin/accounts/{account_id}/cancel"

    assert outsider.post(path, json={"reason": "let me in"}).status_code == 403
    assert client.post(path, json={"reason": "anonymous"}).status_code == 401
    assert support.post(path, json={}).status_code == 422
    assert support.post("/admin/accounts/acc_nobody/cancel", json={"reason": "ticket 1"}).status_code == 404
    assert holder.get("/auth/me").status_code == 200

    before = datetime.now(UTC)
    first = support.post(path, json={"reason": "Ticket 4521: the holder asked by phone"})
    after = datetime.now(UTC)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["account_id"] == account_id and body["status"] == "cancelled"
    assert body["purge_at"][:10] in _purge_day(before, after)
    _assert_cancelled(stack, account_id, body["purge_at"])
    assert holder.get("/auth/me").status_code == 401
    mailbox.last(email, "account is cancelled")

    # Idempotent: the same purge date, no second mail.
    again = support.post(path, json={"reason": "Ticket 4521, once more"})
    assert again.status_code == 200 and again.json() == body
    assert mailbox.count(email, "account is cancelled") == 1

    # Audited by the admin function (P10), refused calls too.
    entries = [
        d.to_dict() or {}
        for d in _db(stack)
        .collection(AUDIT_LOG)
        .where(filter=FieldFilter("actor_id", "in", [support_id, outsider_id]))
        .stream()
    ]
    calls = [
        (e["actor_id"], e["details"].get("outcome"), e.get("target_account_id"), e.get("reason"))
        for e in entries
        if e["action"] == "POST /admin/accounts/{account_id}/cancel"
    ]
    assert (support_id, "allowed", account_id, "Ticket 4521: the holder asked by phone") in calls
    assert (outsider_id, "refused", account_id) in {c[:3] for c in calls}

    # No processing but retention: a late product message is counted, never archived (P12, P19).
    payload = {
        "stream": "product",
        "site": "app",
        "day": datetime.now(UTC).date().isoformat(),
        "received_at": datetime.now(UTC).isoformat(),
        "visitor": secrets.token_hex(16),
        "account_id": account_id,
        "context": {"country": "DE", "browser": "Chrome", "os": "Windows", "device": "desktop"},
        "events": [{"name": "report.exported", "props": {"format": "pdf"}}],
    }
    exported_before = counters(stack, "product", "app", "event").get("report.exported", 0)
    assert push(stack, str(secrets.randbelow(10**15)), payload).status_code in (200, 204)
    assert counters(stack, "product", "app", "event").get("report.exported", 0) > exported_before
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials())
    bucket = stack.env["TELEMETRY_ARCHIVE_BUCKET"]
    assert not list(gcs.list_blobs(bucket, prefix=f"product-events/account={account_id}/"))


@pytest.mark.policy("P19", "P10")
def test_the_cli_cancels_an_account_and_audits_it(client: Client, mailbox: Mailbox, stack: Any) -> None:
    holder, email, _, account_id = _user(client, mailbox)
    assert run_cli("cancel-account", "acc_nobody", "--reason", "test").returncode == 1
    done = run_cli("cancel-account", account_id, "--reason", "Letter to the DPO, ref 12")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["account_id"] == account_id and answer["status"] == "cancelled"
    _assert_cancelled(stack, account_id, answer["purge_at"])
    assert holder.get("/auth/me").status_code == 401
    assert answer["purge_at"][:10] in str(mailbox.last(email, "account is cancelled")["Subject"])
    again = run_cli("cancel-account", account_id, "--reason", "again")
    assert again.returncode == 0 and json.loads(again.stdout) == answer
    entries = [
        d.to_dict() or {}
        for d in _db(stack)
        .collection(AUDIT_LOG)
        .where(filter=FieldFilter("target_account_id", "==", account_id))
        .stream()
    ]
    cli = [e for e in entries if e["action"] == "cli cancel-account"]
    assert len(cli) == 2 and all(e["actor_id"].startswith("cli:") for e in cli)
    assert "Letter to the DPO, ref 12" in {e["reason"] for e in cli}
