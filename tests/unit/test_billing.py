"""Billing pure logic: the plan catalogue (P9), allow-listed projections (P13), signature checks,
the derived plan whatever the order of subscriptions, and how the webhook route answers."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import flask
import pytest
from google.api_core import exceptions as gexc

from shared.adapters.stripe_api import StripeUnavailable
from shared.billing.model import BillingState, EventRef, project_contact, project_invoice, project_subscription
from shared.billing.plans import Catalogue
from shared.billing.webhook import InvalidSignature, verify_event
from shared.config import ConfigError, Settings
from shared.idempotency import InProgress
from tests.stripe_support import event, sign

CARD_NUMBER = "4000056655665556"
CARD_DETAILS = {
    "brand": "visa",
    "last4": "5556",
    "exp_month": 11,
    "exp_year": 2031,
    "fingerprint": "Xt5EWLLDS7FJjR1c",
    "number": CARD_NUMBER,
}
CARD_WORDS = ("5556", "Xt5EWLLDS7FJjR1c", CARD_NUMBER, "visa", "2031", "last4", "fingerprint", "exp_")


def settings(**env: str) -> Settings:
    key = base64.urlsafe_b64encode(b"k" * 32).decode()
    return Settings.from_env({"GOOGLE_CLOUD_PROJECT": "demo-unit", "APP_ENV": "local", "PASSWORD_PEPPER": key, **env})


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue.from_settings(settings())


# -- the plan catalogue (P9) --------------------------------------------------------------------


@pytest.mark.policy("P9")
def test_enterprise_includes_video_and_phone_support_and_every_plan_email(catalogue: Catalogue) -> None:
    enterprise = catalogue.plan_for_price("price_enterprise_monthly")
    assert enterprise is not None and enterprise.id == "enterprise"
    assert {"video_support", "phone_support", "email_support"} <= set(enterprise.entitlements)
    for plan in catalogue.plans.values():
        assert "email_support" in plan.entitlements  # P8: 24x5 email support for everyone
        if plan.id != "enterprise":
            assert not {"video_support", "phone_support"} & set(plan.entitlements)
    assert catalogue.default.id == "free"
    assert catalogue.plan_for_price("price_unknown") is None


@pytest.mark.policy("P9")
def test_the_catalogue_is_overridable_and_validated() -> None:
    doc = {
        "plans": {"free": {"entitlements": ["email_support"]}, "big": {"rank": 5, "entitlements": ["phone_support"]}},
        "prices": {"price_live_big": "big"},
    }
    custom = Catalogue.from_settings(settings(BILLING_PLANS_JSON=json.dumps(doc)))
    assert custom.plan_for_price("price_live_big").entitlements == ("phone_support",)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="unknown plan"):
        Catalogue.parse({"plans": {"free": {}}, "prices": {"p": "nope"}})
    with pytest.raises(ConfigError, match="unknown entitlements"):
        Catalogue.parse({"plans": {"free": {"entitlements": ["teleport"]}}, "prices": {}})
    with pytest.raises(ConfigError, match="cannot be bought"):
        Catalogue.parse({"plans": {"free": {}}, "prices": {"p": "free"}})


@pytest.mark.policy("P13")
def test_stripe_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="at most 2"):
        settings(STRIPE_WEBHOOK_SECRETS="whsec_a,whsec_b,whsec_c")
    with pytest.raises(ConfigError, match="STRIPE_API_BASE"):
        Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "STRIPE_API_BASE": "http://127.0.0.1:1"})
    config = settings(STRIPE_WEBHOOK_SECRETS=" whsec_new , whsec_old ", STRIPE_SECRET_KEY="sk_test_x")
    assert config.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert "whsec" not in repr(config) and "sk_test_x" not in repr(config)
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY"):
        settings().require_keys("stripe_secret_key")


# -- allow-listed projections (P13) ---------------------------------------------------------------


def _subscription(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "sub_1",
        "object": "subscription",
        "customer": {"id": "cus_1", "object": "customer", "sources": {"data": [{"object": "card", **CARD_DETAILS}]}},
        "status": "active",
        "cancel_at_period_end": False,
        "created": 1_790_000_000,
        "default_payment_method": {"id": "pm_1", "object": "payment_method", "card": CARD_DETAILS},
        "items": {
            "data": [
                {
                    "id": "si_1",
                    "price": {"id": "price_enterprise_monthly"},
                    "current_period_start": 1_790_000_000,
                    "current_period_end": 1_792_600_000,
                }
            ]
        },
        "metadata": {"account_id": "acc_1", "note": f"card {CARD_NUMBER}"},
    }
    obj.update(changes)
    return obj


@pytest.mark.policy("P13")
def test_projections_keep_only_the_allow_list(catalogue: Catalogue) -> None:
    sub = project_subscription(_subscription(), catalogue)
    assert (
        sub["plan"] == "enterprise" and sub["customer_id"] == "cus_1" and sub["price_id"] == "price_enterprise_monthly"
    )
    assert sub["current_period_end"] == datetime.fromtimestamp(1_792_600_000, UTC)
    invoice = project_invoice(
        {
            "id": "in_1",
            "object": "invoice",
            "customer": "cus_1",
            "parent": {"subscription_details": {"subscription": "sub_1"}},
            "status": "paid",
            "amount_paid": 99000,
            "currency": "eur",
            "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1/test",
            "charge": {"payment_method_details": {"card": CARD_DETAILS}},
            "payment_settings": {"payment_method_options": {"card": CARD_DETAILS}},
            "description": f"paid with {CARD_NUMBER}",
        }
    )
    assert invoice["subscription_id"] == "sub_1" and invoice["amount_paid"] == 99000
    contact = project_contact(
        {
            "id": "cus_1",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "address": {"city": "London", "country": "GB", "line1": "12 St James's Square"},
            "invoice_settings": {"default_payment_method": {"card": CARD_DETAILS}},
            "sources": {"data": [{"object": "card", **CARD_DETAILS}]},
            "phone": "+44 20 7946 0000",
        }
    )
    assert contact["email"] == "ada@example.com" and contact["address"]["city"] == "London"
    stored = json.dumps([sub, invoice, contact], default=str)
    assert not [word for word in CARD_WORDS if word in stored]
    assert "+44" not in stored


@pytest.mark.policy("P9", "P13")
def test_older_api_versions_and_localstripe_shapes(catalogue: Catalogue) -> None:
    legacy = _subscription(
        items={"data": [{"id": "si_1", "plan": {"id": "price_pro_monthly"}}]},
        current_period_end=1_792_600_000,
    )
    sub = project_subscription(legacy, catalogue)
    assert sub["plan"] == "pro" and sub["current_period_end"] == datetime.fromtimestamp(1_792_600_000, UTC)
    assert project_invoice({"id": "in_1", "subscription": "sub_9"})["subscription_id"] == "sub_9"
    assert project_invoice({"id": "in_1", "hosted_invoice_url": "javascript:alert(1)"})["hosted_invoice_url"] is None


# -- the derived plan, whatever the order -----------------------------------------------------------


def _state(*subs: dict[str, Any]) -> BillingState:
    state = BillingState("acc_1", customer_id="cus_1")
    for sub in subs:
        state.subscriptions[sub["id"]] = sub
    return state


def _sub(sub_id: str, plan: str, status: str, created: int) -> dict[str, Any]:
    return {
        "id": sub_id,
        "plan": plan,
        "status": status,
        "price_id": f"price_{plan}_monthly",
        "created": datetime.fromtimestamp(created, UTC),
    }


@pytest.mark.policy("P9", "P13")
def test_cancelling_an_old_subscription_keeps_a_newer_ones_entitlements(catalogue: Catalogue) -> None:
    state = _state(
        _sub("sub_old", "pro", "canceled", 1_700_000_000), _sub("sub_new", "enterprise", "active", 1_800_000_000)
    )
    state.derive(catalogue)
    assert state.plan == "enterprise" and state.status == "active" and state.subscription_id == "sub_new"
    assert "phone_support" in state.entitlements
    state.subscriptions["sub_new"]["status"] = "canceled"
    state.derive(catalogue)
    assert state.plan == "free" and state.status == "canceled" and state.entitlements == ["email_support"]


@pytest.mark.policy("P9")
def test_past_due_keeps_entitlements_unpaid_and_paused_do_not(catalogue: Catalogue) -> None:
    for status, plan in (("past_due", "pro"), ("trialing", "pro"), ("unpaid", "free"), ("paused", "free")):
        state = _state(_sub("sub_1", "pro", status, 1_800_000_000))
        state.derive(catalogue)
        assert state.plan == plan, status
    paused_collection = _sub("sub_1", "pro", "active", 1_800_000_000) | {"collection_paused": True}
    state = _state(paused_collection)
    state.derive(catalogue)
    assert state.plan == "free"


@pytest.mark.policy("P9")
def test_finished_subscriptions_are_pruned(catalogue: Catalogue) -> None:
    state = _state(*[_sub(f"sub_{n}", "pro", "canceled", 1_700_000_000 + n) for n in range(9)])
    state.derive(catalogue)
    assert sorted(state.subscriptions) == [f"sub_{n}" for n in range(4, 9)]


# -- events ---------------------------------------------------------------------------------------


@pytest.mark.policy("P13")
def test_event_ref_keeps_ids_only() -> None:
    checkout = EventRef.from_event(
        event(
            "checkout.session.completed",
            {
                "id": "cs_1",
                "object": "checkout.session",
                "customer": "cus_1",
                "subscription": "sub_1",
                "client_reference_id": "acc_1",
                "customer_details": {"email": "ada@example.com"},
            },
        )
    )
    assert (checkout.customer_id, checkout.subscription_id, checkout.account_hint) == ("cus_1", "sub_1", "acc_1")
    customer = EventRef.from_event(event("customer.updated", {"id": "cus_2", "object": "customer"}))
    assert customer.customer_id == "cus_2" and customer.subscription_id is None
    invoice = EventRef.from_event(
        event(
            "invoice.paid",
            {
                "id": "in_1",
                "object": "invoice",
                "customer": "cus_3",
                "parent": {"subscription_details": {"subscription": "sub_3"}},
            },
        )
    )
    assert invoice.subscription_id == "sub_3" and invoice.object_id == "in_1"
    assert "ada@example.com" not in json.dumps(checkout.to_doc())
    assert EventRef.from_doc(checkout.to_doc()) == checkout


@pytest.mark.policy("P13")
def test_signature_checks() -> None:
    payload = json.dumps(event("invoice.paid", {"id": "in_1", "object": "invoice"})).encode()
    assert verify_event(payload, sign(payload, "whsec_new"), ["whsec_new", "whsec_old"])["type"] == "invoice.paid"
    # Rotation: deliveries signed with the old secret still verify while both are configured.
    assert verify_event(payload, sign(payload, "whsec_old"), ["whsec_new", "whsec_old"])
    both = f"{sign(payload, 'whsec_new')},v1={sign(payload, 'whsec_old').split('v1=')[1]}"
    assert verify_event(payload, both, ["whsec_old"])
    with pytest.raises(InvalidSignature):
        verify_event(payload, sign(payload, "whsec_other"), ["whsec_new", "whsec_old"])
    with pytest.raises(InvalidSignature):
        verify_event(payload.replace(b"in_1", b"in_2"), sign(payload, "whsec_new"), ["whsec_new"])
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify_event(payload, sign(payload, "whsec_new", int(time.time()) - 301), ["whsec_new"])
    assert verify_event(payload, sign(payload, "whsec_new", int(time.time()) - 290), ["whsec_new"])
    for header in (None, "", "garbage", "t=1,v0=abc"):
        with pytest.raises(InvalidSignature):
            verify_event(payload, header, ["whsec_new"])
    with pytest.raises(InvalidSignature):
        verify_event(b"\xff\xfe", sign(b"x", "whsec_new"), ["whsec_new"])
    with pytest.raises(InvalidSignature):
        verify_event(payload, sign(payload, "whsec_new"), [])


# -- how the webhook route answers ----------------------------------------------------------------


class StubService:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return str(self.outcome)


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("processed", 200),
        ("duplicate", 200),
        ("parked", 200),
        ("ignored", 200),
        (InvalidSignature("no signature matches"), 400),
        (InProgress("stripe-event:evt_1", 30), 409),
        (StripeUnavailable("subscriptions.retrieve"), 503),
        (gexc.ServiceUnavailable("firestore down"), 503),
        (gexc.DeadlineExceeded("slow"), 503),
        (RuntimeError("bug"), 500),
    ],
)
@pytest.mark.policy("P13")
def test_webhook_route_answers(monkeypatch: pytest.MonkeyPatch, outcome: Any, status: int) -> None:
    from functions.stripe_webhook import routes
    from shared.http import HttpApp

    monkeypatch.setattr(routes, "billing_service", lambda: StubService(outcome))
    app = HttpApp("stripe-webhook", settings=settings, routers=[routes.router])
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    with flask.Flask(__name__).test_request_context(
        "/stripe-webhook", method="POST", data=body, headers={"Stripe-Signature": "t=1,v1=x"}
    ):
        response = app.resolve(flask.request)
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 409:
        assert response.headers["Retry-After"] == "30"
    if status == 200:
        assert response.get_json() == {"received": True, "outcome": outcome}
