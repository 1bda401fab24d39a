"""Zendesk, Intercom, HubSpot and Stripe adapters against local fakes of their APIs (P11, P14, P24, P26).

Each fake records every request: the tests check the exact method, path, query, headers and body
of every call, and make the fakes answer 404, 429 with Retry-After, and 500.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator

import pytest
import stripe
from google.api_core.exceptions import ServiceUnavailable

from shared.processors import ProcessorError, Subject
from shared.processors.hubspot import HubSpotAdapter
from shared.processors.intercom import API_VERSION, IntercomAdapter
from shared.processors.stripe import StripeAdapter, StripeUnavailable
from shared.processors.zendesk import ZendeskAdapter
from tests.processor_fakes import (
    HUBSPOT_TOKEN,
    INTERCOM_TOKEN,
    STRIPE_KEY,
    ZENDESK_EMAIL,
    ZENDESK_TOKEN,
    HubSpotFake,
    IntercomFake,
    StripeFake,
    ZendeskFake,
    processor_settings,
)

P11, P14, P24, P26 = (pytest.mark.policy(p) for p in ("P11", "P14", "P24", "P26"))
pytestmark = pytest.mark.policy("P24")


def subject() -> Subject:
    n = uuid.uuid4().hex[:10]
    return Subject(account_id=f"acct_{n}", email=f"ada.{n}+tag@example.com")


# --- Zendesk --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zendesk_server() -> Iterator[ZendeskFake]:
    with ZendeskFake() as fake:
        yield fake


@pytest.fixture
def zendesk(zendesk_server: ZendeskFake) -> ZendeskFake:
    zendesk_server.reset()
    zendesk_server.page_size_cap = 100
    return zendesk_server


def zendesk_adapter(fake: ZendeskFake) -> ZendeskAdapter:
    return ZendeskAdapter(
        processor_settings(ZENDESK_API_BASE=fake.url, ZENDESK_EMAIL=ZENDESK_EMAIL, ZENDESK_API_TOKEN=ZENDESK_TOKEN)
    )


@P11
def test_zendesk_erasure_soft_deletes_then_permanently_deletes(zendesk: ZendeskFake) -> None:
    who = subject()
    user_id = zendesk.add_user(who.email, external_id=who.account_id, tickets=2)
    zendesk.add_user("someone.else@example.com")

    outcome = zendesk_adapter(zendesk).erase(who)

    assert (outcome.status, outcome.detail) == ("done", "1 Zendesk user(s) permanently deleted")
    calls = [(r.method, r.path, r.query) for r in zendesk.requests]
    assert calls == [
        ("GET", "/api/v2/users/search.json", {"external_id": [who.account_id]}),
        ("GET", "/api/v2/users/search.json", {"query": [f"email:{who.email}"]}),
        ("DELETE", f"/api/v2/users/{user_id}", {}),
        ("GET", "/api/v2/deleted_users.json", {"page[size]": ["100"]}),
        ("DELETE", f"/api/v2/deleted_users/{user_id}", {}),
    ]
    expected_auth = "Basic " + base64.b64encode(f"{ZENDESK_EMAIL}/token:{ZENDESK_TOKEN}".encode()).decode()
    for request in zendesk.requests:
        assert request.header("Authorization") == expected_auth
        assert request.header("Accept") == "application/json"
        assert request.raw == b""
    assert user_id in zendesk.purged
    assert not zendesk.holds(who.email)
    assert zendesk.holds("someone.else@example.com")
    assert who.email not in outcome.detail

    # Idempotent: a second run finds nothing and deletes nothing.
    zendesk.reset()
    assert zendesk_adapter(zendesk).erase(who).status == "not_found"
    assert not zendesk.calls("DELETE")


@P11
def test_zendesk_soft_deleted_user_left_by_an_interrupted_run_is_purged(zendesk: ZendeskFake) -> None:
    who = subject()
    user_id = zendesk.add_user(who.email)
    zendesk.add_deleted_filler(5)
    zendesk.page_size_cap = 2  # the scan pages through the deleted users
    zendesk.fail("DELETE", r"/api/v2/deleted_users/\d+", 429, headers={"Retry-After": "42"})

    first = zendesk_adapter(zendesk).erase(who)
    assert (first.status, first.retry_after) == ("retry", 42.0)
    assert user_id in zendesk.deleted, "soft-deleted only: not an erasure yet"

    zendesk.reset()
    zendesk.page_size_cap = 2
    second = zendesk_adapter(zendesk).erase(who)
    assert second.status == "done"
    assert not zendesk.calls("DELETE", r"/api/v2/users/\d+"), "nothing active was left"
    scans = zendesk.calls("GET", "/api/v2/deleted_users.json")
    assert [r.query.get("page[after]") for r in scans] == [None, ["2"], ["4"]]
    assert [r.path for r in zendesk.calls("DELETE")] == [f"/api/v2/deleted_users/{user_id}"]
    assert not zendesk.holds(who.email)


@P11
def test_zendesk_404_then_429_then_500_three_times(zendesk: ZendeskFake) -> None:
    who = subject()
    adapter = zendesk_adapter(zendesk)
    user_id = zendesk.add_user(who.email)

    # 404 on the soft delete (an agent deleted the user meanwhile; the search index still lists it):
    # success for that step, and the soft-deleted user is still purged.
    zendesk.deleted[user_id] = {**zendesk.users[user_id], "active": False}
    zendesk.fail("DELETE", rf"/api/v2/users/{user_id}", 404, body={"error": "RecordNotFound"})
    outcome = adapter.erase(who)
    assert outcome.status == "done"
    assert user_id in zendesk.purged and user_id not in zendesk.deleted
    zendesk.users.pop(user_id)  # the stale index entry of the fake

    other = subject()
    zendesk.add_user(other.email)
    zendesk.fail("GET", "/api/v2/users/search.json", 429, headers={"Retry-After": "7"})
    limited = adapter.erase(other)
    assert (limited.status, limited.retry_after) == ("retry", 7.0)
    assert limited.detail == "users.search: HTTP 429"

    zendesk.fail("GET", "/api/v2/users/search.json", 500, times=3)
    for _ in range(3):
        failed = adapter.erase(other)
        assert (failed.status, failed.retry_after) == ("retry", None)
    assert adapter.erase(other).status == "done"
    assert not zendesk.holds(other.email)


@P11
def test_zendesk_other_4xx_fails_with_a_detail_without_personal_data(zendesk: ZendeskFake) -> None:
    who = subject()
    zendesk.add_user(who.email)
    zendesk.fail("DELETE", r"/api/v2/users/\d+", 403, body={"error": "Forbidden", "description": who.email})
    outcome = zendesk_adapter(zendesk).erase(who)
    assert (outcome.status, outcome.detail) == ("failed", "users.delete: HTTP 403 Forbidden")

    wrong = ZendeskAdapter(
        processor_settings(ZENDESK_API_BASE=zendesk.url, ZENDESK_EMAIL=ZENDESK_EMAIL, ZENDESK_API_TOKEN="wrong")
    )
    assert wrong.erase(who).status == "failed"


@P26
def test_zendesk_export_is_the_user_and_their_tickets(zendesk: ZendeskFake) -> None:
    who = subject()
    user_id = zendesk.add_user(who.email, external_id=who.account_id, tickets=2)
    exported = zendesk_adapter(zendesk).export(who)
    json.dumps(exported)
    assert exported["found"] is True
    (entry,) = exported["users"]
    assert entry["user"]["id"] == user_id
    assert entry["user"]["email"] == who.email
    assert "photo" not in entry["user"]
    assert [t["subject"] for t in entry["tickets"]] == ["Help", "Help"]
    assert all(t["comments"][0]["plain_body"] == "It broke" for t in entry["tickets"])
    assert all("via" not in t for t in entry["tickets"])
    assert not zendesk.calls("DELETE")
    paths = [r.path for r in zendesk.requests]
    assert f"/api/v2/users/{user_id}/tickets/requested.json" in paths
    assert zendesk_adapter(zendesk).export(subject()) == {"found": False, "users": []}

    zendesk.fail("GET", "/api/v2/users/search.json", 500)
    with pytest.raises(ProcessorError) as unavailable:
        zendesk_adapter(zendesk).export(who)
    assert unavailable.value.outcome.status == "retry"


@P11
def test_zendesk_not_configured_is_never_a_silent_success() -> None:
    adapter = ZendeskAdapter(processor_settings())
    outcome = adapter.erase(subject())
    assert outcome.status == "failed"
    assert outcome.detail.startswith("not configured")
    with pytest.raises(ProcessorError):
        adapter.export(subject())


# --- Intercom -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def intercom_server() -> Iterator[IntercomFake]:
    with IntercomFake() as fake:
        yield fake


@pytest.fixture
def intercom(intercom_server: IntercomFake) -> IntercomFake:
    intercom_server.reset()
    intercom_server.per_page_cap = 50
    return intercom_server


def intercom_adapter(fake: IntercomFake) -> IntercomAdapter:
    return IntercomAdapter(processor_settings(INTERCOM_API_BASE=fake.url, INTERCOM_TOKEN=INTERCOM_TOKEN))


def intercom_search_body(who: Subject, starting_after: str | None = None) -> dict[str, object]:
    pagination: dict[str, object] = {"per_page": 50}
    if starting_after:
        pagination["starting_after"] = starting_after
    return {
        "query": {
            "operator": "OR",
            "value": [
                {"field": "external_id", "operator": "=", "value": who.account_id},
                {"field": "email", "operator": "=", "value": who.email},
            ],
        },
        "pagination": pagination,
    }


@P11
def test_intercom_erasure_finds_contacts_by_email_and_deletes_them(intercom: IntercomFake) -> None:
    who = subject()
    lead = intercom.add_contact(who.email, role="lead")
    user = intercom.add_contact("changed@example.com", external_id=who.account_id)
    stranger = intercom.add_contact("someone.else@example.com")

    outcome = intercom_adapter(intercom).erase(who)

    assert (outcome.status, outcome.detail) == ("done", "2 Intercom contact(s) deleted")
    assert [(r.method, r.path) for r in intercom.requests] == [
        ("POST", "/contacts/search"),
        ("DELETE", f"/contacts/{lead}"),
        ("DELETE", f"/contacts/{user}"),
    ]
    search = intercom.requests[0]
    assert search.body == intercom_search_body(who)
    assert search.header("Content-Type") == "application/json"
    for request in intercom.requests:
        assert request.header("Authorization") == f"Bearer {INTERCOM_TOKEN}"
        assert request.header("Intercom-Version") == API_VERSION
        assert request.header("Accept") == "application/json"
    assert list(intercom.contacts) == [stranger]

    intercom.reset()
    assert intercom_adapter(intercom).erase(who).status == "not_found"
    assert not intercom.calls("DELETE")


@P11
def test_intercom_pages_through_search_results(intercom: IntercomFake) -> None:
    who = subject()
    intercom.per_page_cap = 1
    first, second = intercom.add_contact(who.email), intercom.add_contact(who.email, role="lead")
    assert intercom_adapter(intercom).erase(who).status == "done"
    searches = intercom.calls("POST", "/contacts/search")
    assert [s.body for s in searches] == [intercom_search_body(who), intercom_search_body(who, "1")]
    assert {r.path for r in intercom.calls("DELETE")} == {f"/contacts/{first}", f"/contacts/{second}"}


@P11
def test_intercom_404_then_429_then_500_three_times(intercom: IntercomFake) -> None:
    who = subject()
    adapter = intercom_adapter(intercom)
    contact = intercom.add_contact(who.email)

    intercom.fail("DELETE", f"/contacts/{contact}", 404, body={"type": "error.list", "errors": [{"code": "not_found"}]})
    gone = adapter.erase(who)
    assert gone.status == "not_found", "deleted meanwhile: nothing left, and not a failure"
    assert gone.succeeded

    intercom.fail("POST", "/contacts/search", 429, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    limited = adapter.erase(who)
    assert limited.status == "retry"
    assert limited.retry_after is not None and limited.retry_after > 3600

    intercom.fail("DELETE", f"/contacts/{contact}", 500, times=3)
    for _ in range(3):
        assert adapter.erase(who).status == "retry"
    assert adapter.erase(who).status == "done"
    assert contact not in intercom.contacts


@P26
def test_intercom_export_is_the_contacts_allow_listed(intercom: IntercomFake) -> None:
    who = subject()
    contact = intercom.add_contact(who.email, external_id=who.account_id)
    exported = intercom_adapter(intercom).export(who)
    assert exported["found"] is True
    (entry,) = exported["contacts"]
    assert entry["id"] == contact
    assert entry["email"] == who.email
    assert entry["location"] == {"country": "France", "region": "IDF", "city": "Paris"}
    assert "avatar" not in entry
    assert not intercom.calls("DELETE")
    assert intercom_adapter(intercom).export(subject()) == {"found": False, "contacts": []}


# --- HubSpot --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hubspot_server() -> Iterator[HubSpotFake]:
    with HubSpotFake() as fake:
        yield fake


@pytest.fixture
def hubspot(hubspot_server: HubSpotFake) -> HubSpotFake:
    hubspot_server.reset()
    return hubspot_server


def hubspot_adapter(fake: HubSpotFake) -> HubSpotAdapter:
    return HubSpotAdapter(processor_settings(HUBSPOT_API_BASE=fake.url, HUBSPOT_TOKEN=HUBSPOT_TOKEN))


@P11
def test_hubspot_erasure_is_the_gdpr_delete_by_email(hubspot: HubSpotFake) -> None:
    who = subject()
    hubspot.add_contact(who.email)
    hubspot.add_contact("someone.else@example.com")

    outcome = hubspot_adapter(hubspot).erase(who)

    assert outcome.status == "done"
    (call,) = hubspot.requests
    assert (call.method, call.path, call.query) == ("POST", "/crm/v3/objects/contacts/gdpr-delete", {})
    assert call.body == {"objectId": who.email, "idProperty": "email"}
    assert call.header("Authorization") == f"Bearer {HUBSPOT_TOKEN}"
    assert call.header("Content-Type") == "application/json"
    assert list(hubspot.contacts) == ["someone.else@example.com"]

    again = hubspot_adapter(hubspot).erase(who)
    assert (again.status, again.detail) == ("not_found", "no HubSpot contact")


@P11
def test_hubspot_429_then_500_three_times_then_400(hubspot: HubSpotFake) -> None:
    who = subject()
    hubspot.add_contact(who.email)
    adapter = hubspot_adapter(hubspot)
    path = "/crm/v3/objects/contacts/gdpr-delete"
    hubspot.fail("POST", path, 429, headers={"Retry-After": "10"}, body={"category": "RATE_LIMITS"})
    limited = adapter.erase(who)
    assert (limited.status, limited.retry_after, limited.detail) == (
        "retry",
        10.0,
        "contacts.gdpr_delete: HTTP 429 RATE_LIMITS",
    )
    hubspot.fail("POST", path, 500, times=3)
    assert [adapter.erase(who).status for _ in range(3)] == ["retry"] * 3
    hubspot.fail("POST", path, 400, body={"status": "error", "category": "VALIDATION_ERROR", "message": who.email})
    bad = adapter.erase(who)
    assert (bad.status, bad.detail) == ("failed", "contacts.gdpr_delete: HTTP 400 VALIDATION_ERROR")
    assert adapter.erase(who).status == "done"
    assert not hubspot.contacts.get(who.email.lower())


@P26
def test_hubspot_export_reads_the_contact_by_email(hubspot: HubSpotFake) -> None:
    who = subject()
    contact_id = hubspot.add_contact(who.email)
    exported = hubspot_adapter(hubspot).export(who)
    (call,) = hubspot.requests
    assert call.method == "GET"
    assert call.path == f"/crm/v3/objects/contacts/{who.email}"
    assert call.query["idProperty"] == ["email"]
    assert "email" in call.query["properties"][0].split(",")
    assert exported["found"] is True
    assert exported["contact"]["id"] == contact_id
    assert exported["contact"]["properties"]["email"] == who.email
    assert "hs_object_id" not in exported["contact"]["properties"]
    assert hubspot_adapter(hubspot).export(subject()) == {"found": False}


# --- Stripe (fake; the localstripe round trip is in test_processor_google_stripe.py) ---------------


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[StripeFake]:
    with StripeFake() as fake:
        yield fake


@pytest.fixture
def stripe_fake(stripe_server: StripeFake) -> StripeFake:
    stripe_server.reset()
    return stripe_server


def stripe_adapter(fake: StripeFake) -> StripeAdapter:
    return StripeAdapter(processor_settings(STRIPE_API_BASE=fake.url, STRIPE_SECRET_KEY=STRIPE_KEY))


@P11
@P26
def test_stripe_export_holds_no_card_data_and_erasure_deletes_the_customer(stripe_fake: StripeFake) -> None:
    who = subject()
    cid = stripe_fake.add_customer(who.email, who.account_id)
    exported = stripe_adapter(stripe_fake).export(Subject(who.account_id, who.email, stripe_customer_id=cid))
    text = json.dumps(exported)
    assert exported["found"] is True
    (entry,) = exported["customers"]
    assert entry["customer"]["id"] == cid
    assert entry["customer"]["address"]["city"] == "Paris"
    assert entry["subscriptions"][0]["items"][0]["price"]["id"] == "price_pro"
    assert entry["invoices"][0]["total"] == 1900
    for card_data in ("4242", "card_", "pm_", "last4", "exp_month", "payment_method", "sources", "charge"):
        assert card_data not in text, card_data

    outcome = stripe_adapter(stripe_fake).erase(Subject(who.account_id, who.email, stripe_customer_id=cid))
    assert (outcome.status, outcome.detail) == ("done", "1 Stripe customer(s) deleted")
    assert [r.path for r in stripe_fake.calls("DELETE")] == [f"/v1/customers/{cid}"]
    assert all(r.header("Authorization") == f"Bearer {STRIPE_KEY}" for r in stripe_fake.requests)
    assert cid not in stripe_fake.customers
    assert stripe_adapter(stripe_fake).erase(Subject(who.account_id, who.email, stripe_customer_id=cid)).status == (
        "not_found"
    )


@P11
def test_stripe_customer_found_by_email_when_the_id_is_unknown(stripe_fake: StripeFake) -> None:
    who = subject()
    cid = stripe_fake.add_customer(who.email, who.account_id)
    assert stripe_adapter(stripe_fake).erase(who).status == "done"
    (listing,) = stripe_fake.calls("GET", "/v1/customers")
    assert listing.query == {"email": [who.email], "limit": ["100"]}
    assert cid not in stripe_fake.customers


@P11
def test_stripe_429_then_500_three_times(stripe_fake: StripeFake) -> None:
    who = subject()
    cid = stripe_fake.add_customer(who.email, who.account_id)
    adapter = stripe_adapter(stripe_fake)
    rate = {"error": {"type": "invalid_request_error", "code": "rate_limit"}}
    stripe_fake.fail("DELETE", rf"/v1/customers/{cid}", 429, body=rate, headers={"Retry-After": "3"})
    limited = adapter.erase(who)
    assert (limited.status, limited.retry_after) == ("retry", 3.0)
    stripe_fake.fail("DELETE", rf"/v1/customers/{cid}", 500, body={"error": {"type": "api_error"}}, times=3)
    assert [adapter.erase(who).status for _ in range(3)] == ["retry"] * 3
    assert len(stripe_fake.calls("DELETE")) == 4, "the adapter never retries by itself"
    assert adapter.erase(who).status == "done"


@P11
@P14
def test_stripe_not_configured_and_refused_hosts(stripe_fake: StripeFake) -> None:
    missing = StripeAdapter(processor_settings()).erase(subject())
    assert missing.status == "failed" and missing.detail.startswith("not configured")
    # Outside local mode a loopback base is refused before any request (config forbids it too).
    settings = processor_settings(STRIPE_API_BASE=stripe_fake.url, STRIPE_SECRET_KEY=STRIPE_KEY)
    production = type(settings)(**{**settings.__dict__, "app_env": "production"})
    refused = StripeAdapter(production).erase(subject())
    assert (refused.status, refused.detail) == ("failed", "egress refused (P14)")
    assert stripe_fake.requests == []


@P11
def test_stripe_erasure_calls_the_billing_hook_first_then_deletes_what_is_left(stripe_fake: StripeFake) -> None:
    who = subject()
    stray = stripe_fake.add_customer(who.email, "")  # made outside checkout: billing never linked it
    calls: list[str] = []

    def hook(account_id: str) -> dict[str, int]:
        calls.append(account_id)
        assert not stripe_fake.calls("DELETE"), "the hook runs before the adapter's own deletions"
        return {"customers": 1, "deleted": 1}

    settings = processor_settings(STRIPE_API_BASE=stripe_fake.url, STRIPE_SECRET_KEY=STRIPE_KEY)
    outcome = StripeAdapter(settings, erase_hook=hook).erase(who)
    assert calls == [who.account_id]
    assert (outcome.status, outcome.detail) == ("done", "2 Stripe customer(s) deleted")
    assert [r.path for r in stripe_fake.calls("DELETE")] == [f"/v1/customers/{stray}"]


@P11
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StripeUnavailable("customers.delete"), "retry"),
        (ServiceUnavailable("firestore"), "retry"),
        (stripe.AuthenticationError("bad key", http_status=401), "failed"),
        (KeyError("bug"), "failed"),
    ],
)
def test_stripe_billing_hook_failures(stripe_fake: StripeFake, error: Exception, status: str) -> None:
    def hook(account_id: str) -> None:
        raise error

    settings = processor_settings(STRIPE_API_BASE=stripe_fake.url, STRIPE_SECRET_KEY=STRIPE_KEY)
    outcome = StripeAdapter(settings, erase_hook=hook).erase(subject())
    assert outcome.status == status
    assert not stripe_fake.calls("DELETE")


# --- Disabled processors --------------------------------------------------------------------------


@P11
def test_a_disabled_processor_is_done_and_says_so() -> None:
    from shared.processors import processor_adapters

    adapters = {a.name: a for a in processor_adapters(processor_settings(PROCESSORS_DISABLED="intercom,hubspot"))}
    for name in ("Intercom", "HubSpot"):
        outcome = adapters[name].erase(subject())
        assert (outcome.status, outcome.detail) == ("done", "disabled")
        assert adapters[name].export(subject()) == {"found": False, "disabled": True}
    zendesk = adapters["Zendesk"].erase(subject())
    assert zendesk.status == "failed" and "not configured" in zendesk.detail


# --- Marketing consent (P18): HubSpot communication preferences, Intercom unsubscribed_from_emails ----------


P18 = pytest.mark.policy("P18")


@P18
def test_hubspot_consent_subscribes_and_unsubscribes_idempotently() -> None:
    who = subject()
    with HubSpotFake() as hubspot:
        adapter = HubSpotAdapter(
            processor_settings(
                HUBSPOT_API_BASE=hubspot.url, HUBSPOT_TOKEN=HUBSPOT_TOKEN, HUBSPOT_SUBSCRIPTION_ID="12345"
            )
        )
        assert adapter.sync_consent(who, True).status == "done"
        assert hubspot.subscriptions[who.email.lower()] == {"12345"}
        assert adapter.sync_consent(who, True).status == "done"  # HubSpot's 400 "already subscribed"
        first = hubspot.calls("POST", "/communication-preferences/v3/subscribe")[0]
        assert first.body == {
            "emailAddress": who.email,
            "subscriptionId": "12345",
            "legalBasis": "CONSENT_WITH_NOTICE",
            "legalBasisExplanation": "The account holder opted in to marketing mail in WizyVision.",
        }
        assert first.header("Authorization") == f"Bearer {HUBSPOT_TOKEN}"
        assert adapter.sync_consent(who, False).status == "done"
        assert adapter.sync_consent(who, False).status == "done"
        assert hubspot.subscriptions[who.email.lower()] == set()
        unsubscribe = hubspot.calls("POST", "/communication-preferences/v3/unsubscribe")[0]
        assert unsubscribe.body == {"emailAddress": who.email, "subscriptionId": "12345"}

        hubspot.fail("POST", "/communication-preferences/v3/subscribe", 429, headers={"Retry-After": "7"})
        retry = adapter.sync_consent(who, True)
        assert (retry.status, retry.retry_after) == ("retry", 7.0)
        assert who.email not in retry.detail


@P18
def test_hubspot_consent_without_subscription_id_or_token_is_not_configured() -> None:
    for env in ({"HUBSPOT_TOKEN": HUBSPOT_TOKEN}, {"HUBSPOT_SUBSCRIPTION_ID": "12345"}):
        outcome = HubSpotAdapter(processor_settings(**env)).sync_consent(subject(), True)
        assert outcome.status == "failed" and outcome.detail.startswith("not configured")


@P18
def test_intercom_consent_sets_unsubscribed_from_emails_on_every_contact() -> None:
    who = subject()
    with IntercomFake() as intercom:
        ids = [intercom.add_contact(who.email), intercom.add_contact("other@example.com", external_id=who.account_id)]
        untouched = intercom.add_contact("someone.else@example.com")
        adapter = IntercomAdapter(processor_settings(INTERCOM_API_BASE=intercom.url, INTERCOM_TOKEN=INTERCOM_TOKEN))

        assert adapter.sync_consent(who, False).status == "done"
        assert [intercom.contacts[i]["unsubscribed_from_emails"] for i in ids] == [True, True]
        assert "unsubscribed_from_emails" not in intercom.contacts[untouched]
        puts = intercom.calls("PUT")
        assert {r.path for r in puts} == {f"/contacts/{i}" for i in ids}
        assert all(r.body == {"unsubscribed_from_emails": True} for r in puts)
        assert all(r.header("Intercom-Version") == API_VERSION for r in puts)

        assert adapter.sync_consent(who, True).status == "done"
        assert [intercom.contacts[i]["unsubscribed_from_emails"] for i in ids] == [False, False]

        intercom.fail("PUT", r"/contacts/\w+", 503)
        assert adapter.sync_consent(who, True).status == "retry"
        assert adapter.sync_consent(subject(), True).status == "not_found"


@P18
def test_only_hubspot_and_intercom_carry_consent() -> None:
    from shared.processors.registry import consent_adapters

    names = [a.name for a in consent_adapters(processor_settings())]
    assert names == ["Intercom", "HubSpot"]
    assert [a.name for a in consent_adapters(processor_settings(PROCESSORS_DISABLED="intercom"))] == ["HubSpot"]
