"""The Google adapter against the Firebase Auth emulator, the Stripe adapter against localstripe (P11, P24, P26)."""

from __future__ import annotations

import uuid
from typing import Any

import firebase_admin
import pytest
import stripe
from firebase_admin import auth

from shared.config import Settings
from shared.processors import Subject
from shared.processors.google import GoogleAdapter
from shared.processors.stripe import StripeAdapter

pytestmark = pytest.mark.policy("P24")


@pytest.fixture(scope="module")
def firebase_app(stack: Any) -> firebase_admin.App:
    assert stack.env.get("FIREBASE_AUTH_EMULATOR_HOST"), "the stack runs the Auth emulator"
    name = f"test-processors-{uuid.uuid4().hex[:6]}"
    app = firebase_admin.initialize_app(options={"projectId": stack.env["GOOGLE_CLOUD_PROJECT"]}, name=name)
    yield app
    firebase_admin.delete_app(app)


def unique_email() -> str:
    return f"ada.{uuid.uuid4().hex[:10]}@example.com"


@pytest.mark.policy("P11", "P26")
def test_google_export_and_erasure_of_the_firebase_user(stack: Any, firebase_app: firebase_admin.App) -> None:
    settings = Settings.from_env(stack.env)
    email, old_email = unique_email(), unique_email()
    by_email = auth.create_user(email=email, email_verified=True, display_name="Ada Lovelace", app=firebase_app)
    # The account's linked Firebase user, whose address has since changed: found by uid.
    by_uid = auth.create_user(email=old_email, display_name="Ada L", app=firebase_app)
    bystander = auth.create_user(email=unique_email(), app=firebase_app)
    who = Subject(account_id=f"acct_{uuid.uuid4().hex[:8]}", email=email, firebase_uid=by_uid.uid)
    adapter = GoogleAdapter(settings)

    exported = adapter.export(who)
    assert exported["found"] is True
    users = {u["uid"]: u for u in exported["users"]}
    assert set(users) == {by_email.uid, by_uid.uid}
    assert users[by_email.uid]["email"] == email
    assert users[by_email.uid]["display_name"] == "Ada Lovelace"
    assert users[by_email.uid]["email_verified"] is True
    assert isinstance(users[by_email.uid]["created_at_ms"], int)
    assert not any("hash" in key or "salt" in key for u in exported["users"] for key in u)

    outcome = adapter.erase(who)
    assert (outcome.status, outcome.detail) == ("done", "2 Firebase Authentication user(s) deleted")
    for uid in (by_email.uid, by_uid.uid):
        with pytest.raises(auth.UserNotFoundError):
            auth.get_user(uid, app=firebase_app)
    assert auth.get_user(bystander.uid, app=firebase_app).uid == bystander.uid

    again = adapter.erase(who)
    assert (again.status, again.succeeded) == ("not_found", True)
    assert adapter.export(who) == {"found": False, "users": []}


@pytest.mark.policy("P11")
def test_google_password_account_without_firebase_user_is_not_found(stack: Any) -> None:
    outcome = GoogleAdapter(Settings.from_env(stack.env)).erase(Subject("acct_x", unique_email()))
    assert (outcome.status, outcome.succeeded) == ("not_found", True)


@pytest.mark.policy("P11", "P26")
def test_stripe_adapter_against_localstripe(stack: Any) -> None:
    if not stack.env.get("STRIPE_API_BASE"):
        pytest.skip("no localstripe in this stack (the fake-based Stripe tests still ran)")
    settings = Settings.from_env(stack.env)
    client = stripe.StripeClient(
        settings.stripe_secret_key, base_addresses={"api": settings.stripe_api_base}, max_network_retries=0
    )
    email = unique_email()
    account_id = f"acct_{uuid.uuid4().hex[:8]}"
    customer = client.v1.customers.create(
        params={"email": email, "name": "Ada Lovelace", "metadata": {"account_id": account_id}}
    )
    who = Subject(account_id, email, stripe_customer_id=customer.id)
    adapter = StripeAdapter(settings)

    exported = adapter.export(who)
    assert exported["found"] is True
    assert [c["customer"]["id"] for c in exported["customers"]] == [customer.id]
    assert exported["customers"][0]["customer"]["email"] == email

    outcome = adapter.erase(who)
    assert outcome.status == "done"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve(customer.id)
    assert adapter.erase(who).status == "not_found"
