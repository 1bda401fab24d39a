"""The billing service on the Firestore emulator, adapters swapped through the composition root.

Stripe is an in-memory fake here (`FakeStripe`), so each test controls exactly what "the Stripe
API" answers when the service re-reads an object, and can make it unavailable; Checkout and Billing
Portal go through the real stripe library to a local HTTP fake that records the exact parameters.
The end-to-end tests (tests/e2e/test_billing_*.py) run the same flows through localstripe and the
gateway.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.adapters.mail import Mail
from shared.adapters.stripe_api import StripeClientApi, StripeUnavailable
from shared.billing.model import BILLING_ACCOUNTS, BILLING_CUSTOMERS, BILLING_EVENTS_PENDING, BILLING_INVOICES, EventRef
from shared.billing.service import BillingService, event_key
from shared.bootstrap import build_billing_service
from shared.config import Settings
from shared.errors import Conflict, InvalidInput
from shared.http.errors import problem_for
from shared.idempotency import COMPLETED, FAILED, IdempotencyStore, InProgress
from shared.identity.model import ACCOUNTS, Account
from tests.stripe_support import StripeSessionsFake, event

NOW = int(time.time())


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Mail] = []
        self._lock = threading.Lock()

    def send(self, mail: Mail) -> None:
        with self._lock:
            self.sent.append(mail)

    def to(self, address: str, subject_has: str = "") -> list[Mail]:
        return [m for m in self.sent if m.to == address and subject_has.lower() in m.subject.lower()]


class FakeStripe:
    """The Stripe API as the service sees it: objects by id, mutable by the test, optionally down."""

    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.down = False
        self.reads: Counter[str] = Counter()
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.down:
            raise StripeUnavailable("fake is down")

    def create_customer(self, *, email: str, name: str, account_id: str, idempotency_key: str) -> dict[str, Any]:
        self._check()
        with self._lock:
            for customer in self.customers.values():
                if customer.get("_key") == idempotency_key:
                    return customer
            customer = self.add_customer(email=email, name=name, metadata={"account_id": account_id})
            customer["_key"] = idempotency_key
            return customer

    def create_checkout_session(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check()
        return {"id": "cs_fake", "url": "https://checkout.stripe.com/c/pay/cs_fake"}

    def create_portal_session(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check()
        return {"id": "bps_fake", "url": "https://billing.stripe.com/p/session/bps_fake"}

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        self._check()
        self.reads[customer_id] += 1
        return self.customers.get(customer_id)

    def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        self._check()
        self.reads[subscription_id] += 1
        return self.subscriptions.get(subscription_id)

    def invoice(self, invoice_id: str) -> dict[str, Any] | None:
        self._check()
        self.reads[invoice_id] += 1
        return self.invoices.get(invoice_id)

    def delete_customer(self, customer_id: str) -> bool:
        self._check()
        self.deleted.append(customer_id)
        return self.customers.pop(customer_id, None) is not None

    # -- what the test does on "the Stripe side" --
    def add_customer(self, **fields: Any) -> dict[str, Any]:
        customer = {"id": f"cus_{secrets.token_hex(7)}", "object": "customer", "metadata": {}, **fields}
        self.customers[customer["id"]] = customer
        return customer

    def add_subscription(self, customer_id: str, price: str, status: str = "active", **fields: Any) -> dict[str, Any]:
        sub = {
            "id": f"sub_{secrets.token_hex(7)}",
            "object": "subscription",
            "customer": customer_id,
            "status": status,
            "cancel_at_period_end": False,
            "created": NOW,
            "items": {
                "data": [{"price": {"id": price}, "current_period_start": NOW, "current_period_end": NOW + 30 * 86400}]
            },
            "metadata": {},
            **fields,
        }
        self.subscriptions[sub["id"]] = sub
        return sub

    def add_invoice(self, sub: dict[str, Any], status: str = "paid", **fields: Any) -> dict[str, Any]:
        invoice = {
            "id": f"in_{secrets.token_hex(7)}",
            "object": "invoice",
            "customer": sub["customer"],
            "parent": {"subscription_details": {"subscription": sub["id"]}},
            "number": f"WZ-{secrets.randbelow(10**6):06d}",
            "status": status,
            "currency": "eur",
            "amount_due": 2900,
            "amount_paid": 2900 if status == "paid" else 0,
            "attempt_count": 1,
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/inv_test",
            "period_start": NOW,
            "period_end": NOW + 30 * 86400,
            **fields,
        }
        self.invoices[invoice["id"]] = invoice
        return invoice


class FlakyDb:
    """A Firestore client whose transactions fail with 503 while `down`."""

    def __init__(self, db: firestore.Client) -> None:
        self._db = db
        self.down = True

    def transaction(self, **kwargs: Any) -> Any:
        if self.down:
            raise gexc.ServiceUnavailable("firestore is unavailable")
        return self._db.transaction(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.fixture
def config(stack: Any) -> Settings:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    env = {**os.environ, **stack.env, "PASSWORD_PEPPER": key, "TOTP_ENCRYPTION_KEY": key}
    env.setdefault("STRIPE_WEBHOOK_SECRETS", "whsec_integration")
    env.setdefault("STRIPE_SECRET_KEY", "sk_test_integration")
    return Settings.from_env(env)


@pytest.fixture
def db(stack: Any) -> firestore.Client:
    return firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture
def fake() -> FakeStripe:
    return FakeStripe()


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def service(config: Settings, fake: FakeStripe, mailer: RecordingMailer) -> BillingService:
    return build_billing_service(config, stripe=fake, mailer=mailer)


def new_account(db: firestore.Client, **fields: Any) -> Account:
    account = Account(
        id=secrets.token_hex(10),
        email=f"billing.{secrets.token_hex(5)}@example.com",
        first_name="Ada",
        last_name="Lovelace",
        created_at=datetime.now(UTC),
        email_verified=True,
        **fields,
    )
    db.collection(ACCOUNTS).document(account.id).set(account.to_doc())
    return account


def customer_of(service: BillingService, fake: FakeStripe, account: Account) -> str:
    """A Stripe customer created by the service, as checkout does."""
    return service._ensure_customer(account, service.state(account.id))


def ref_of(kind: str, obj: dict[str, Any], created: int | None = None, event_id: str | None = None) -> EventRef:
    return EventRef.from_event(event(kind, obj, created, event_id))


# -- Checkout and Billing Portal against the HTTP fake (P17) ---------------------------------------


@pytest.fixture
def sessions_fake() -> Iterator[StripeSessionsFake]:
    server = StripeSessionsFake().start()
    yield server
    server.stop()


@pytest.fixture
def http_service(config: Settings, sessions_fake: StripeSessionsFake, mailer: RecordingMailer) -> BillingService:
    client = stripe.StripeClient("sk_test_sessions", base_addresses={"api": sessions_fake.url}, max_network_retries=0)
    return build_billing_service(config, stripe=StripeClientApi(client), mailer=mailer)


@pytest.mark.policy("P17")
def test_checkout_session_is_created_server_side_with_exact_parameters(
    http_service: BillingService, sessions_fake: StripeSessionsFake, db: firestore.Client, config: Settings
) -> None:
    account = new_account(db)
    url = http_service.checkout(account, "price_pro_monthly")
    assert url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [customer_call] = sessions_fake.calls("/v1/customers")
    assert customer_call.params == {
        "email": account.email,
        "name": "Ada Lovelace",
        "metadata[account_id]": account.id,
    }
    assert customer_call.headers["Idempotency-Key"] == f"wizyvision-customer-{account.id}-0"
    customer_id = sessions_fake.customers[customer_call.headers["Idempotency-Key"]]["id"]
    [session_call] = sessions_fake.calls("/v1/checkout/sessions")
    assert session_call.params == {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": account.id,
        "line_items[0][price]": "price_pro_monthly",
        "line_items[0][quantity]": "1",
        "subscription_data[metadata][account_id]": account.id,
        "metadata[account_id]": account.id,
        "customer_update[address]": "auto",
        "customer_update[name]": "auto",
        "success_url": f"{config.app_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{config.app_url}/billing/canceled",
    }
    # The customer is created once per account: a second checkout reuses it.
    http_service.checkout(account, "price_enterprise_yearly")
    assert len(sessions_fake.calls("/v1/customers")) == 1
    assert sessions_fake.calls("/v1/checkout/sessions")[-1].params["customer"] == customer_id
    assert db.collection(BILLING_CUSTOMERS).document(customer_id).get().to_dict()["account_id"] == account.id
    assert http_service.state(account.id).customer_id == customer_id


@pytest.mark.policy("P17")
def test_concurrent_checkouts_create_one_customer(
    http_service: BillingService, sessions_fake: StripeSessionsFake, db: firestore.Client
) -> None:
    account = new_account(db)
    barrier = threading.Barrier(4)
    urls: list[str] = []

    def go() -> None:
        barrier.wait()
        urls.append(http_service.checkout(account, "price_pro_monthly"))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(urls) == 4
    keys = {call.headers["Idempotency-Key"] for call in sessions_fake.calls("/v1/customers")}
    assert keys == {f"wizyvision-customer-{account.id}-0"}  # same key: Stripe answers with one customer
    customers = {call.params["customer"] for call in sessions_fake.calls("/v1/checkout/sessions")}
    assert len(customers) == 1


@pytest.mark.policy("P17")
def test_checkout_refuses_unknown_prices_and_second_subscriptions(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    with pytest.raises(InvalidInput) as unknown:
        service.checkout(account, "price_not_in_catalogue")
    answer = problem_for(unknown.value)
    assert answer.status == 422 and answer.slug == "unknown-price" and answer.title == "Unknown price"
    assert answer.extensions["errors"][0]["code"] == "unknown_price"
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    service.receive(ref_of("customer.subscription.created", sub))
    with pytest.raises(Conflict) as twice:
        service.checkout(account, "price_enterprise_monthly")
    assert problem_for(twice.value).status == 409 and twice.value.code == "already-subscribed"


@pytest.mark.policy("P17")
def test_portal_session_for_the_accounts_customer(
    http_service: BillingService, sessions_fake: StripeSessionsFake, db: firestore.Client, config: Settings
) -> None:
    account = new_account(db)
    with pytest.raises(Conflict) as none_yet:
        http_service.portal(account)
    assert problem_for(none_yet.value).status == 409 and none_yet.value.code == "no-billing-account"
    http_service.checkout(account, "price_pro_monthly")
    customer_id = http_service.state(account.id).customer_id
    url = http_service.portal(account)
    assert url.startswith("https://billing.stripe.com/p/session/")
    [call] = sessions_fake.calls("/v1/billing_portal/sessions")
    assert call.params == {"customer": customer_id, "return_url": f"{config.app_url}/billing"}


# -- the webhook service: exactly once, order-proof (P13) ------------------------------------------


@pytest.mark.policy("P13", "P18")
def test_duplicates_are_no_ops_and_a_paid_invoice_gets_one_receipt(
    service: BillingService, fake: FakeStripe, mailer: RecordingMailer, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_enterprise_monthly")
    invoice = fake.add_invoice(sub)
    paid = ref_of("invoice.paid", invoice)
    assert service.receive(paid) == "processed"
    assert service.receive(paid) == "duplicate"
    # Stripe also sends invoice.payment_succeeded for the same invoice (a different event): one receipt.
    assert service.receive(ref_of("invoice.payment_succeeded", invoice)) == "processed"
    receipts = mailer.to(account.email, "receipt")
    assert len(receipts) == 1 and receipts[0].category == "transactional"
    assert "990.00 EUR" not in receipts[0].text and "29.00 EUR" in receipts[0].text
    assert invoice["hosted_invoice_url"] in receipts[0].text
    state = service.state(account.id)
    assert state.plan == "enterprise" and state.status == "active"
    assert {"video_support", "phone_support"} <= set(state.entitlements)
    stored = db.collection(BILLING_INVOICES).document(invoice["id"]).get().to_dict()
    assert stored["account_id"] == account.id and stored["amount_paid"] == 2900
    record = service.idempotency.record(event_key(paid.id))
    assert record["status"] == COMPLETED and record["result"] == {"outcome": "processed"}


@pytest.mark.policy("P13")
def test_the_same_event_delivered_twice_at_once_is_handled_once(
    service: BillingService, fake: FakeStripe, mailer: RecordingMailer, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    invoice = fake.add_invoice(fake.add_subscription(customer_id, "price_pro_monthly"))
    ref = ref_of("invoice.paid", invoice)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def deliver() -> None:
        barrier.wait()
        try:
            outcomes.append(service.receive(ref))
        except InProgress:
            outcomes.append("in-progress")

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.count("processed") == 1, outcomes
    assert set(outcomes) <= {"processed", "duplicate", "in-progress"}
    assert fake.reads[invoice["id"]] == 1  # the work (re-reading the invoice) was done once
    assert len(mailer.to(account.email, "receipt")) == 1
    assert service.receive(ref) == "duplicate"


@pytest.mark.policy("P13")
def test_an_older_event_arriving_late_never_overwrites_newer_state(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    old_payload = dict(sub)
    # Later the customer schedules the cancellation; Stripe sends updated (new) after created (old).
    sub["cancel_at_period_end"] = True
    assert service.receive(ref_of("customer.subscription.updated", dict(sub), created=NOW + 60)) == "processed"
    assert service.receive(ref_of("customer.subscription.created", old_payload, created=NOW)) == "processed"
    state = service.state(account.id)
    assert state.cancel_at_period_end is True and state.status == "active"
    # An older "updated" whose payload says active, delivered after the deletion: still canceled.
    sub.update(status="canceled", ended_at=NOW + 120)
    service.receive(ref_of("customer.subscription.deleted", dict(sub), created=NOW + 120))
    service.receive(ref_of("customer.subscription.updated", old_payload, created=NOW + 30))
    state = service.state(account.id)
    assert state.status == "canceled" and state.plan == "free"


@pytest.mark.policy("P9", "P13")
def test_cancelling_an_old_subscription_keeps_the_newer_ones_entitlements(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    old = fake.add_subscription(customer_id, "price_pro_monthly", created=NOW - 86400)
    new = fake.add_subscription(customer_id, "price_enterprise_yearly", created=NOW)
    service.receive(ref_of("customer.subscription.created", new))
    old["status"] = "canceled"
    service.receive(ref_of("customer.subscription.deleted", old))
    state = service.state(account.id)
    assert state.plan == "enterprise" and state.subscription_id == new["id"]
    assert {"video_support", "phone_support"} <= set(state.entitlements)
    view = service.view(account)
    assert view["plan"] == "enterprise" and "phone_support" in view["entitlements"]


@pytest.mark.policy("P13")
def test_a_stripe_outage_fails_the_event_then_its_retry_succeeds(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    ref = ref_of("customer.subscription.created", sub)
    fake.down = True
    with pytest.raises(StripeUnavailable):
        service.receive(ref)
    assert service.idempotency.record(event_key(ref.id))["status"] == FAILED
    pending = db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().to_dict()
    assert pending["reason"] == "failed" and pending["error"] == "StripeUnavailable"
    assert service.state(account.id).plan == "free"
    fake.down = False
    assert service.receive(ref) == "processed"  # Stripe's retry
    assert service.state(account.id).plan == "pro"
    assert not db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().exists


@pytest.mark.policy("P13")
def test_a_firestore_outage_fails_the_event_then_its_retry_succeeds(
    config: Settings, fake: FakeStripe, mailer: RecordingMailer, db: firestore.Client
) -> None:
    flaky = FlakyDb(db)
    service = build_billing_service(config, db=flaky, stripe=fake, mailer=mailer, idempotency=IdempotencyStore(db))
    account = new_account(db)
    flaky.down = False
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    ref = ref_of("customer.subscription.created", sub)
    flaky.down = True
    with pytest.raises(gexc.ServiceUnavailable):
        service.receive(ref)
    assert service.idempotency.record(event_key(ref.id))["status"] == FAILED
    flaky.down = False
    assert service.receive(ref) == "processed"
    assert service.state(account.id).plan == "pro"


@pytest.mark.policy("P13")
def test_unknown_customers_are_parked_and_the_reconcile_replays_them(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    stranger = fake.add_customer(email="someone@example.com")  # created in the dashboard, tied to no account
    sub = fake.add_subscription(stranger["id"], "price_pro_monthly")
    ref = ref_of("customer.subscription.created", sub)
    assert service.receive(ref) == "parked"
    assert service.receive(ref) == "duplicate"
    parked = db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().to_dict()
    assert parked["reason"] == "unknown-customer" and parked["customer_id"] == stranger["id"]
    assert set(parked) >= {"id", "type", "object_id", "customer_id", "expire_at"} and "data" not in parked
    counts = service.reconcile()
    assert counts.get("still-parked", 0) >= 1
    assert db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().exists
    # An operator ties the customer to its account in Stripe (metadata), then reconciles.
    stranger["metadata"] = {"account_id": account.id}
    counts = service.reconcile()
    assert counts.get("replayed", 0) >= 1
    assert not db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().exists
    state = service.state(account.id)
    assert state.plan == "pro" and state.customer_id == stranger["id"]


@pytest.mark.policy("P13")
def test_checkout_completed_links_the_customer_and_syncs_contact_and_subscription(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer = fake.add_customer(
        email="accounts@lovelace.example", name="Lovelace Ltd", address={"city": "London", "country": "GB"}
    )
    sub = fake.add_subscription(customer["id"], "price_pro_yearly", metadata={"account_id": account.id})
    session = {
        "id": f"cs_test_{secrets.token_hex(6)}",
        "object": "checkout.session",
        "customer": customer["id"],
        "subscription": sub["id"],
        "client_reference_id": account.id,
        "payment_status": "paid",
    }
    assert service.receive(ref_of("checkout.session.completed", session)) == "processed"
    state = service.state(account.id)
    assert state.customer_id == customer["id"] and state.plan == "pro"
    assert state.billing_contact == {
        "name": "Lovelace Ltd",
        "email": "accounts@lovelace.example",
        "address": {
            "line1": None,
            "line2": None,
            "city": "London",
            "postal_code": None,
            "state": None,
            "country": "GB",
        },
    }
    assert service.view(account)["billing_contact"]["email"] == "accounts@lovelace.example"


@pytest.mark.policy("P13", "P18")
def test_payment_failed_action_required_and_trial_notices(
    service: BillingService, fake: FakeStripe, mailer: RecordingMailer, db: firestore.Client
) -> None:
    account = new_account(db, billing_contact={"email": f"finance.{secrets.token_hex(4)}@example.com"})
    to = account.billing_contact["email"]  # type: ignore[index]
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly", status="past_due")
    invoice = fake.add_invoice(sub, status="open")
    service.receive(ref_of("invoice.payment_failed", invoice))
    service.receive(ref_of("invoice.payment_failed", invoice))  # another event, same attempt: one notice
    invoice["attempt_count"] = 2
    service.receive(ref_of("invoice.payment_failed", invoice))
    assert len(mailer.to(to, "payment failed")) == 2
    assert service.state(account.id).plan == "pro"  # past_due keeps access while Stripe retries
    service.receive(ref_of("invoice.payment_action_required", invoice))
    [confirm] = mailer.to(to, "confirm your")
    assert invoice["hosted_invoice_url"] in confirm.text
    trial = fake.add_subscription(customer_id, "price_enterprise_monthly", status="trialing", trial_end=NOW + 3 * 86400)
    service.receive(ref_of("customer.subscription.trial_will_end", trial))
    assert len(mailer.to(to, "trial ends")) == 1
    session = {
        "id": "cs_async",
        "object": "checkout.session",
        "customer": customer_id,
        "client_reference_id": account.id,
    }
    service.receive(ref_of("checkout.session.async_payment_failed", session))
    assert len(mailer.to(to, "did not go through")) == 1
    assert all(m.category == "transactional" for m in mailer.sent)


@pytest.mark.policy("P13")
def test_customer_deleted_cancels_its_subscriptions(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_enterprise_monthly")
    service.receive(ref_of("customer.subscription.created", sub))
    deleted = dict(fake.customers.pop(customer_id))
    assert service.receive(ref_of("customer.deleted", deleted)) == "processed"
    state = service.state(account.id)
    assert state.customer_deleted and state.plan == "free" and state.status == "canceled"
    assert state.billing_contact is None
    assert service.view(account)["has_billing_account"] is False
    # A late customer.updated for the deleted customer re-reads it (404) and changes nothing.
    service.receive(ref_of("customer.updated", deleted))
    assert service.state(account.id).customer_deleted


@pytest.mark.policy("P11")
def test_erasure_deletes_the_stripe_customer_and_marks_billing_erased(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    invoice = fake.add_invoice(sub)
    service.receive(ref_of("invoice.paid", invoice))
    assert service.erase_account(account.id) == {"customers": 1, "deleted": 1}
    assert customer_id not in fake.customers
    # Resumable: a second run finds the customer gone (404) and counts it as done.
    assert service.erase_account(account.id) == {"customers": 1, "deleted": 0}
    state = db.collection(BILLING_ACCOUNTS).document(account.id).get().to_dict()
    assert state["erased"] is True and state["billing_contact"] is None and state["subscriptions"] == {}
    assert state["customer_id"] is None
    assert not db.collection(BILLING_INVOICES).document(invoice["id"]).get().exists
    marker = db.collection(BILLING_CUSTOMERS).document(customer_id).get().to_dict()
    assert marker["erased"] is True
    # Stripe's late events for the deleted customer are acknowledged and change nothing.
    assert service.receive(ref_of("customer.subscription.deleted", sub)) == "erased"
    assert service.state(account.id).erased


@pytest.mark.policy("P13")
def test_unhandled_types_are_acknowledged_and_not_recorded(service: BillingService) -> None:
    ref = ref_of("payment_method.attached", {"id": "pm_1", "object": "payment_method", "customer": "cus_x"})
    assert service.receive(ref) == "ignored"
    assert service.idempotency.record(event_key(ref.id)) is None


@pytest.mark.policy("P11", "P13")
def test_erased_accounts_are_not_resurrected_by_late_checkout_events(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    service.erase_account(account.id)
    later = fake.add_customer(metadata={"account_id": account.id})
    session = {
        "id": "cs_late",
        "object": "checkout.session",
        "customer": later["id"],
        "client_reference_id": account.id,
    }
    assert service.receive(ref_of("checkout.session.completed", session)) == "erased"
    state = service.state(account.id)
    assert state.erased and state.customer_id is None and state.billing_contact is None
    assert customer_id not in fake.customers


@pytest.mark.policy("P11")
def test_events_for_an_erased_account_do_not_bring_billing_back(
    service: BillingService, fake: FakeStripe, db: firestore.Client
) -> None:
    account = new_account(db)
    customer_id = customer_of(service, fake, account)
    sub = fake.add_subscription(customer_id, "price_pro_monthly")
    service.receive(ref_of("customer.subscription.created", sub))
    # The privacy worker erased the account place by place (shared/datamap.py), hook or not.
    db.collection(ACCOUNTS).document(account.id).delete()
    db.collection(BILLING_ACCOUNTS).document(account.id).delete()
    sub["status"] = "canceled"
    assert service.receive(ref_of("customer.subscription.deleted", sub)) == "erased"
    assert not db.collection(BILLING_ACCOUNTS).document(account.id).get().exists


@pytest.mark.policy("P13", "P27")
def test_pending_records_expire(service: BillingService, fake: FakeStripe, db: firestore.Client) -> None:
    stranger = fake.add_customer()
    ref = ref_of("customer.updated", stranger)
    service.receive(ref)
    parked = db.collection(BILLING_EVENTS_PENDING).document(ref.id).get().to_dict()
    assert parked["expire_at"] - parked["updated_at"] == timedelta(days=90)
