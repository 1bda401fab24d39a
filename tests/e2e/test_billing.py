"""Billing end to end, through the gateway, with localstripe as Stripe (P9, P13, P17, P18).

localstripe is part of the stack: it signs and delivers its events to the gateway's
/stripe-webhook. Checkout and Billing Portal sessions, which localstripe lacks, are created
through a second gateway whose STRIPE_API_BASE is a local fake: it records the exact parameters of
those two calls and forwards everything else to localstripe, so the customer checkout creates is a
real localstripe customer whose events arrive by webhook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.procs import free_port, wait_until
from devstack.stack import REPO_ROOT, gateway_process
from shared.billing.model import BILLING_ACCOUNTS, BILLING_EVENTS_PENDING
from shared.billing.service import event_key
from shared.idempotency import IdempotencyStore
from tests.stripe_support import (
    StripeSessionsFake,
    add_card,
    deliver,
    ensure_plans,
    event,
    localstripe,
    luhn_number,
    sign,
    subscribe,
    wait_for,
    webhook_secret,
)
from tests.support import Client, Mailbox, signin, signup_and_verify

pytestmark = pytest.mark.policy("P13")


@pytest.fixture(scope="module")
def env(stack: Any) -> dict[str, str]:
    if "STRIPE_API_BASE" not in stack.env:
        pytest.skip("this stack runs no localstripe (restart make run)")
    return dict(stack.env)


@pytest.fixture(scope="module")
def ls(env: dict[str, str]) -> stripe.StripeClient:
    client = localstripe(env)
    ensure_plans(client)
    return client


@pytest.fixture(scope="module")
def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture(scope="module")
def billing_gateway(
    stack: Any, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, StripeSessionsFake, Path]]:
    """A second gateway whose Stripe is the sessions fake (forwarding the rest to localstripe)."""
    fake = StripeSessionsFake(upstream=env["STRIPE_API_BASE"]).start()
    port = free_port()
    log_path = tmp_path_factory.mktemp("billing-gateway") / "gateway.log"
    child_env = {**os.environ, **env, "STRIPE_API_BASE": fake.url}
    process = gateway_process(REPO_ROOT, port, child_env, log_path, stack.project)
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return requests.get(f"{url}/_devstack/health", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        assert wait_until(up, 60), f"billing gateway did not start:\n{process.log_tail()}"
        yield url, fake, log_path
    finally:
        process.stop()
        fake.stop()


def account(client: Client, mailbox: Mailbox) -> tuple[Client, str, str]:
    email, password = signup_and_verify(client, mailbox)
    authed = signin(client, email, password)
    account_id = authed.get("/auth/me").json()["id"]
    return authed, email, account_id


def billing(client: Client) -> dict[str, Any]:
    response = client.get("/billing")
    assert response.status_code == 200, response.text
    return response.json()


def stripe_customer(ls: stripe.StripeClient, account_id: str, email: str) -> str:
    """A customer tied to the account the way checkout ties it (metadata.account_id)."""
    return ls.v1.customers.create(params={"email": email, "metadata": {"account_id": account_id}}).id


# -- the whole flow -------------------------------------------------------------------------------


@pytest.mark.policy("P9", "P13", "P17", "P18")
def test_checkout_subscription_receipt_portal_cancellation_and_deletion(
    client: Client,
    mailbox: Mailbox,
    ls: stripe.StripeClient,
    env: dict[str, str],
    billing_gateway: tuple[str, StripeSessionsFake, Path],
    stack: Any,
    db: firestore.Client,
) -> None:
    base, fake, _log = billing_gateway
    authed, email, account_id = account(client, mailbox)
    assert billing(authed) == {
        "plan": "free",
        "plan_name": "Free",
        "status": "none",
        "current_period_end": None,
        "cancel_at_period_end": False,
        "billing_contact": {},
        "entitlements": ["email_support"],
        "has_billing_account": False,
    }
    assert client.get("/billing").status_code == 401

    # Checkout, created server-side (P17), through the gateway whose Stripe is the fake.
    via_fake = authed.clone(base_url=base)
    response = via_fake.post("/billing/checkout", json={"price": "price_enterprise_monthly"})
    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [created] = [r for r in fake.calls("/v1/customers") if r.params.get("metadata[account_id]") == account_id]
    assert created.headers["Idempotency-Key"] == f"wizyvision-customer-{account_id}-0"
    customer_id = db.collection(BILLING_ACCOUNTS).document(account_id).get().to_dict()["customer_id"]
    assert ls.v1.customers.retrieve(customer_id).to_dict()["metadata"] == {"account_id": account_id}
    [session] = [r for r in fake.calls("/v1/checkout/sessions") if r.params.get("client_reference_id") == account_id]
    assert session.params == {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": account_id,
        "line_items[0][price]": "price_enterprise_monthly",
        "line_items[0][quantity]": "1",
        "subscription_data[metadata][account_id]": account_id,
        "metadata[account_id]": account_id,
        "customer_update[address]": "auto",
        "customer_update[name]": "auto",
        "success_url": f"{stack.public_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{stack.public_url}/billing/canceled",
    }
    assert via_fake.post("/billing/checkout", json={"price": "price_gold"}).status_code == 422
    assert via_fake.post("/billing/checkout", json={"price": "x", "extra": 1}).status_code == 422

    # The customer pays: localstripe creates the subscription and its invoice, and delivers
    # customer.subscription.created and invoice.payment_succeeded, signed, to /stripe-webhook.
    add_card(ls, customer_id)
    sub = subscribe(ls, customer_id, "price_enterprise_monthly", account_id)
    state = wait_for(lambda: (b := billing(authed))["plan"] == "enterprise" and b, what="enterprise plan")
    assert state["status"] == "active" and state["has_billing_account"]
    assert state["entitlements"] == ["email_support", "video_support", "phone_support"]  # P9
    assert state["current_period_end"] is not None and state["cancel_at_period_end"] is False
    receipt = mailbox.last(email, "receipt", timeout=20)
    assert "Enterprise" in str(receipt["Subject"]) and receipt["X-Mail-Category"] == "transactional"
    # Stripe's own checkout.session.completed, as it would arrive: handled, nothing changes.
    completed = event(
        "checkout.session.completed",
        {
            "id": "cs_test_done",
            "object": "checkout.session",
            "customer": customer_id,
            "subscription": sub["id"],
            "client_reference_id": account_id,
        },
    )
    answer = deliver(stack.gateway_url, completed, webhook_secret(env))
    assert answer.status_code == 200 and answer.json()["outcome"] == "processed"
    assert via_fake.post("/billing/checkout", json={"price": "price_pro_monthly"}).status_code == 409

    # The billing portal (P17).
    response = via_fake.post("/billing/portal")
    assert response.status_code == 200 and response.json()["url"].startswith("https://billing.stripe.com/p/session/")
    [portal] = [r for r in fake.calls("/v1/billing_portal/sessions") if r.params.get("customer") == customer_id]
    assert portal.params == {"customer": customer_id, "return_url": f"{stack.public_url}/billing"}

    # Cancellation, by webhook.
    ls.v1.subscriptions.cancel(sub["id"])
    state = wait_for(lambda: (b := billing(authed))["status"] == "canceled" and b, what="cancellation")
    assert state["plan"] == "free" and state["entitlements"] == ["email_support"]

    # customer.deleted, by webhook.
    ls.v1.customers.delete(customer_id)
    wait_for(lambda: billing(authed)["has_billing_account"] is False, what="customer deletion")
    assert authed.clone(base_url=base).post("/billing/portal").status_code == 409


# -- signatures -----------------------------------------------------------------------------------


def test_unsigned_tampered_stale_and_foreign_deliveries_are_refused_and_change_nothing(
    stack: Any, env: dict[str, str], db: firestore.Client
) -> None:
    evt = event("customer.updated", {"id": "cus_nobody", "object": "customer", "metadata": {}})
    secret = webhook_secret(env)
    payload = json.dumps(evt).encode()
    refused = {
        "unsigned": deliver(stack.gateway_url, evt, secret, signature=""),
        "garbage": deliver(stack.gateway_url, evt, secret, signature="t=1,v1=00"),
        "tampered": deliver(
            stack.gateway_url,
            evt,
            secret,
            body=payload.replace(b"cus_nobody", b"cus_other"),
            signature=sign(payload, secret),
        ),
        "stale": deliver(stack.gateway_url, evt, secret, timestamp=int(time.time()) - 301),
        "foreign": deliver(stack.gateway_url, evt, "whsec_someone_else"),
    }
    for name, response in refused.items():
        assert response.status_code == 400, (name, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["type"].endswith("/invalid-signature")
    store = IdempotencyStore(db)
    assert store.record(event_key(evt["id"])) is None
    assert not db.collection(BILLING_EVENTS_PENDING).document(evt["id"]).get().exists
    # Within the 300 s tolerance, the same event signed properly is accepted (and parked: nobody's).
    ok = deliver(stack.gateway_url, evt, secret, timestamp=int(time.time()) - 200)
    assert ok.status_code == 200 and ok.json()["outcome"] == "parked"
    assert deliver(stack.gateway_url, evt, secret).json()["outcome"] == "duplicate"


def test_unhandled_event_types_are_acknowledged(stack: Any, env: dict[str, str]) -> None:
    evt = event("payment_intent.created", {"id": "pi_1", "object": "payment_intent"})
    response = deliver(stack.gateway_url, evt, webhook_secret(env))
    assert response.status_code == 200 and response.json() == {"received": True, "outcome": "ignored"}


# -- exactly once ---------------------------------------------------------------------------------


@pytest.mark.policy("P13", "P18")
def test_duplicate_and_concurrent_deliveries_do_the_work_once(
    client: Client, mailbox: Mailbox, ls: stripe.StripeClient, env: dict[str, str], stack: Any, db: firestore.Client
) -> None:
    authed, email, account_id = account(client, mailbox)
    customer_id = stripe_customer(ls, account_id, email)
    add_card(ls, customer_id)
    sub = subscribe(ls, customer_id, "price_pro_monthly", account_id)
    invoice_id = sub["latest_invoice"]
    # localstripe delivers invoice.payment_succeeded: the receipt goes out once it is handled.
    store = IdempotencyStore(db)
    events = ls.v1.events.list(params={"type": "invoice.payment_succeeded", "limit": 100}).data
    [own] = [e for e in events if e.to_dict()["data"]["object"]["id"] == invoice_id]
    wait_for(lambda: (store.record(event_key(own.id)) or {}).get("status") == "completed", what="localstripe event")
    mailbox.last(email, "receipt")
    # Stripe also sends invoice.paid for the same invoice: deliver it twice at once, then again.
    paid = event("invoice.paid", ls.v1.invoices.retrieve(invoice_id).to_dict())
    barrier = threading.Barrier(2)
    answers: list[requests.Response] = []

    def post() -> None:
        barrier.wait()
        answers.append(deliver(stack.gateway_url, paid, webhook_secret(env)))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    outcomes = sorted(str(a.json().get("outcome")) if a.status_code == 200 else str(a.status_code) for a in answers)
    # One did the work; the other saw it done, or was told to come back (409) while it was being done.
    assert outcomes in (["duplicate", "processed"], ["409", "processed"]), outcomes
    assert deliver(stack.gateway_url, paid, webhook_secret(env)).json()["outcome"] == "duplicate"
    record = store.record(event_key(paid["id"]))
    assert record["status"] == "completed" and record["attempts"] == 1
    assert mailbox.count(email, "receipt") == 1  # two events for one invoice, one of them three times: one receipt
    assert billing(authed)["plan"] == "pro"


@pytest.mark.policy("P9", "P13")
def test_events_out_of_order_and_an_old_cancellation_never_win(
    client: Client, mailbox: Mailbox, ls: stripe.StripeClient, env: dict[str, str], stack: Any
) -> None:
    authed, email, account_id = account(client, mailbox)
    customer_id = stripe_customer(ls, account_id, email)
    add_card(ls, customer_id)
    old = subscribe(ls, customer_id, "price_pro_monthly", account_id)
    new = subscribe(ls, customer_id, "price_enterprise_yearly", account_id)
    wait_for(lambda: billing(authed)["plan"] == "enterprise", what="enterprise plan")
    secret = webhook_secret(env)
    # The customer schedules the enterprise cancellation at period end (localstripe sends no
    # customer.subscription.updated: deliver Stripe's), then an older update arrives late.
    ls.v1.subscriptions.update(new["id"], params={"cancel_at_period_end": True})
    newer = event("customer.subscription.updated", {**new, "cancel_at_period_end": True}, created=int(time.time()))
    older = event("customer.subscription.updated", new, created=int(time.time()) - 600)
    assert deliver(stack.gateway_url, newer, secret).json()["outcome"] == "processed"
    assert deliver(stack.gateway_url, older, secret).json()["outcome"] == "processed"
    state = billing(authed)
    assert state["cancel_at_period_end"] is True and state["plan"] == "enterprise"
    # The old pro subscription is cancelled: the enterprise one keeps its entitlements.
    ls.v1.subscriptions.cancel(old["id"])
    deleted = event("customer.subscription.deleted", {**old, "status": "canceled"})
    assert deliver(stack.gateway_url, deleted, secret).json()["outcome"] == "processed"
    state = billing(authed)
    assert state["plan"] == "enterprise" and "phone_support" in state["entitlements"]


# -- parked events and the reconcile command --------------------------------------------------------


def test_an_unknown_customers_events_are_parked_then_reconciled(
    client: Client, mailbox: Mailbox, ls: stripe.StripeClient, env: dict[str, str], stack: Any, db: firestore.Client
) -> None:
    # A customer created in the Stripe dashboard, tied to no account: its events are parked.
    customer_id = ls.v1.customers.create(params={"email": "walk-in@example.com"}).id
    ls.v1.customers.update(customer_id, params={"name": "Walk In"})
    pending = db.collection(BILLING_EVENTS_PENDING).where(filter=FieldFilter("customer_id", "==", customer_id))
    parked = wait_for(lambda: list(pending.stream()), what="parked event")
    assert parked[0].to_dict()["reason"] == "unknown-customer"

    def alerts() -> list[dict[str, Any]]:
        log = Path(stack.gateway_log).read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in log.splitlines() if "billing-event-parked" in line and customer_id in line]

    alert = wait_for(alerts, what="the parked-event alert line")[0]
    assert alert["severity"] == "ERROR" and alert["alert"] == "billing-event-parked"
    # Support ties the customer to its account in Stripe, then runs the reconcile command.
    authed, _email, account_id = account(client, mailbox)
    ls.v1.customers.update(customer_id, params={"metadata": {"account_id": account_id}})
    listed = subprocess.run(
        [sys.executable, "-m", "shared.billing.reconcile", "--list"],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert customer_id in listed.stdout
    done = subprocess.run(
        [sys.executable, "-m", "shared.billing.reconcile"],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])["reconcile"]
    assert counts.get("replayed", 0) >= 1
    assert not list(pending.stream())
    contact = db.collection(BILLING_ACCOUNTS).document(account_id).get().to_dict()["billing_contact"]
    assert contact["name"] == "Walk In"
    assert billing(authed)["has_billing_account"] is True


# -- P13: card data never stored ---------------------------------------------------------------------


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


CARD_KEYS = {
    "card",
    "last4",
    "exp_month",
    "exp_year",
    "fingerprint",
    "brand",
    "payment_method",
    "payment_method_details",
    "default_payment_method",
    "sources",
    "charge",
}
BILLING_COLLECTIONS = ("billing_accounts", "billing_customers", "billing_invoices", "billing_events_pending")


@pytest.mark.policy("P13")
def test_card_data_in_payloads_never_reaches_firestore_logs_or_mail(
    client: Client,
    mailbox: Mailbox,
    ls: stripe.StripeClient,
    env: dict[str, str],
    stack: Any,
    db: firestore.Client,
) -> None:
    import hashlib
    import secrets

    authed, email, account_id = account(client, mailbox)
    customer_id = stripe_customer(ls, account_id, email)
    pan = luhn_number("4")
    add_card(ls, customer_id, pan)  # localstripe's own objects now carry this card's details
    sub = subscribe(ls, customer_id, "price_pro_monthly", account_id)
    invoice = ls.v1.invoices.retrieve(sub["latest_invoice"]).to_dict()
    brand = f"canarybrand{secrets.token_hex(4)}"
    fingerprint = f"fpcanary{secrets.token_hex(6)}"
    exp_year = 2000 + secrets.randbelow(90) + 100  # 21xx: no date of this century
    card = {"brand": brand, "last4": pan[-4:], "exp_month": 7, "exp_year": exp_year, "fingerprint": fingerprint}
    spaced = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    payment_method = {"id": "pm_canary", "object": "payment_method", "type": "card", "card": card}
    payloads = [
        event(
            "invoice.paid",
            {
                **invoice,
                "charge": {"id": "ch_canary", "payment_method_details": {"type": "card", "card": card}},
                "description": f"card {spaced}",
                "footer": pan,
            },
        ),
        event(
            "customer.updated",
            {
                "id": customer_id,
                "object": "customer",
                "email": email,
                "metadata": {"account_id": account_id, "note": pan},
                "invoice_settings": {"default_payment_method": payment_method},
                "sources": {"data": [{"object": "card", "id": "card_canary", **card}]},
            },
        ),
        event(
            "customer.subscription.updated",
            {**sub, "default_payment_method": payment_method, "description": spaced},
        ),
        event(
            "checkout.session.completed",
            {
                "id": "cs_canary",
                "object": "checkout.session",
                "customer": customer_id,
                "subscription": sub["id"],
                "client_reference_id": account_id,
                "payment_method_details": card,
                "custom_fields": [{"key": "po", "text": {"value": pan}}],
            },
        ),
        event("payment_method.attached", {**payment_method, "customer": customer_id}),
        event("charge.succeeded", {"id": "ch_canary", "object": "charge", "payment_method_details": {"card": card}}),
        event("customer.updated", {"id": "cus_unknown_canary", "object": "customer", "sources": {"data": [card]}}),
    ]
    for payload in payloads:
        response = deliver(stack.gateway_url, payload, webhook_secret(env))
        assert response.status_code == 200, response.text
    wait_for(lambda: billing(authed)["plan"] == "pro", what="pro plan")
    mailbox.last(email, "receipt")

    localstripe_fingerprint = hashlib.sha1(pan.encode()).hexdigest()[:16]  # noqa: S324 (localstripe's)
    canaries = [pan, spaced, brand, fingerprint, localstripe_fingerprint]  # exp_year: by the key scan below
    # Every Firestore document of the run.
    documents = [
        (snap.reference.path, snap.to_dict() or {}) for collection in db.collections() for snap in collection.stream()
    ]
    text = "\n".join(f"{path} {json.dumps(data, default=str)}" for path, data in documents)
    assert text and not [c for c in canaries if c in text]
    for path, data in documents:
        if path.split("/")[0] in (*BILLING_COLLECTIONS, "idempotency_records"):
            assert not CARD_KEYS & set(_keys(data)), path
    # Every log line of the run, and every mail.
    log = Path(stack.gateway_log).read_text(encoding="utf-8", errors="replace")
    assert '"stripe event handled"' in log
    assert not [c for c in canaries if c in log]
    mails = "\n".join(str(m) for m in mailbox.sink.messages())
    assert not [c for c in canaries if c in mails]
