"""The data map: every place that holds account data, and every processor it goes to (P11, P14, P24, P27).

One registry, read by export (P26), erasure (P11), the retention sweep (P27) and the record of
processing activities (GDPR Art. 30). Nothing else in the code lists places: a collection or a
bucket prefix that is not declared here is a bug, and a test run after the whole suite fails on it.

Adding a store: declare it here first (category, how it ties to an account, whether it is exported,
how it is erased and why, how long it is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Erasure = Literal["delete", "anonymise", "expire", "keep"]


@dataclass(frozen=True)
class FirestorePlace:
    """A Firestore collection (or collection group) holding account data.

    `account_field` names the field that ties a document to an account; `None` means the
    document id is the account id. `erasure`: "delete" the documents; "anonymise" them (the
    reason says what is kept and why); "expire" when they hold no direct identifier and a TTL
    removes them within `retention`; "keep" only for records that hold no personal data at all.
    `export_fields`: the fields an export shows (None: every field); secrets such as hashes stay out.
    """

    collection: str
    category: str
    purpose: str
    account_field: str | None
    export: bool
    erasure: Erasure
    retention: timedelta | None
    reason: str = ""
    group: bool = False
    ttl_field: str | None = None
    export_fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StoragePlace:
    """A Cloud Storage bucket (named by a setting) and the per-account prefix inside it."""

    bucket_setting: str
    prefix: str  # with "{account_id}"
    category: str
    purpose: str
    export: bool
    erasure: Erasure
    retention: timedelta | None
    reason: str = ""


@dataclass(frozen=True)
class QueuePlace:
    """A Pub/Sub topic whose messages hold personal data while they wait to be handled.

    Messages cannot be deleted one by one: they are acknowledged once handled and expire with the
    topic's retention (1 day, terraform/pubsub.tf), an undelivered one with its subscription's
    (7 days) and then its dead-letter topic's (7 days).
    """

    topic: str
    category: str
    purpose: str
    retention: timedelta
    reason: str = ""


@dataclass(frozen=True)
class Processor:
    """A processor personal data may go to (P24). `hosts` is every host the code may call for it.

    `export`: what an export (P26) holds from it; `erasure`: the calls that erase the person there
    (shared/processors/<name>.py) and anything the processor keeps on its own legal ground;
    `retention`: how long it holds the data. The record of processing (shared/ropa.py) prints them.
    """

    name: str
    purpose: str
    categories: tuple[str, ...]
    hosts: tuple[str, ...]
    location: str
    safeguards: str
    export: str = ""
    erasure: str = ""
    retention: str = ""


DAY = timedelta(days=1)
ACCOUNT_LIFETIME = None  # kept while the account is active, then the retention sweep applies (P27)

FIRESTORE: tuple[FirestorePlace, ...] = (
    FirestorePlace(
        "accounts",
        category="profile",
        purpose="Provide the service: login, names, billing contact (P15)",
        account_field=None,
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        export_fields=(
            "email",
            "email_verified",
            "pending_email",
            "first_name",
            "last_name",
            "billing_contact",
            "google_subject",
            "status",
            "totp_enabled",
            "roles",
            "created_at",
            "updated_at",
            "last_active_at",
            "cancelled_at",
            "purge_at",
            "objection",
        ),
    ),
    FirestorePlace(
        "account_emails",
        category="profile",
        purpose="Find an account by its login address (a digest of the address)",
        account_field="account_id",
        export=False,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        reason="Not exported: an index of the profile's email, which the profile export already holds.",
    ),
    FirestorePlace(
        "google_identities",
        category="profile",
        purpose="Link a Google subject to its account (P2)",
        account_field="account_id",
        export=False,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        reason="Not exported: the Google subject is in the profile export.",
    ),
    FirestorePlace(
        "sessions",
        category="sessions",
        purpose="Session records: connection information while signed in (P21)",
        account_field="account_id",
        export=True,
        erasure="delete",
        retention=timedelta(hours=12),
        ttl_field="expires_at",
        export_fields=("id", "ip", "user_agent", "method", "created_at", "last_seen_at", "expires_at"),
    ),
    FirestorePlace(
        "verification_tokens",
        category="security",
        purpose="Single-use email verification and password reset links (P16, P25)",
        account_field="account_id",
        export=False,
        erasure="delete",
        retention=timedelta(hours=1),
        ttl_field="expires_at",
        reason="Not exported: hashes of links that expire within the hour.",
    ),
    FirestorePlace(
        "pending_signups",
        category="profile",
        purpose="Sign-ups waiting for their address to be confirmed: names, address and password hash (P16)",
        account_field=None,
        export=False,
        erasure="expire",
        retention=timedelta(hours=1),
        ttl_field="expires_at",
        reason="Not tied to any account (none exists until the address is confirmed); deleted when the "
        "address gets an account, otherwise removed by TTL once the link expires.",
    ),
    FirestorePlace(
        "security_events",
        category="security_events",
        purpose="Protect accounts and stop abuse: sign-ins, failures, lockouts (P22)",
        account_field="account_id",
        export=True,
        erasure="delete",
        retention=timedelta(days=395),
        ttl_field="expire_at",
        export_fields=("type", "at", "ip", "user_agent", "details"),
    ),
    FirestorePlace(
        "privacy_requests",
        category="privacy_requests",
        purpose="Data subject requests (export, erasure) and each step's outcome (P11, P26)",
        account_field="account_id",
        export=True,
        erasure="delete",
        retention=timedelta(days=365),
        export_fields=("id", "type", "status", "requested_by", "received_at", "due_at", "completed_at"),
        reason="A running erasure keeps its own request until its deletion record is written, then deletes it. "
        "A closed request (completed or cancelled) is kept 1 year after `completed_at`, the proof that it was "
        "answered in time should the holder or the CNIL ask within the year, then the retention sweep "
        "deletes it (an erasure's lasting proof is its deletion record, which holds no personal data).",
    ),
    FirestorePlace(
        "signin_throttle",
        category="security",
        purpose="Sign-in throttling per account and per network (P22)",
        account_field=None,
        export=False,
        erasure="expire",
        retention=timedelta(hours=2),
        ttl_field="expire_at",
        reason="Keyed by keyed digests of the address and the IP, holds only failure times; "
        "gone within an hour of the last failure.",
    ),
    FirestorePlace(
        "billing_accounts",
        category="billing",
        purpose="The account's billing: Stripe customer id, billing contact, subscriptions, plan and "
        "entitlements (P9, P13, P17); never card data",
        account_field=None,
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        export_fields=(
            "customer_id",
            "customer_deleted",
            "billing_contact",
            "subscriptions",
            "plan",
            "status",
            "subscription_id",
            "price_id",
            "current_period_end",
            "cancel_at_period_end",
            "entitlements",
            "updated_at",
        ),
    ),
    FirestorePlace(
        "billing_customers",
        category="billing",
        purpose="Tie a Stripe customer id to its account, for the Stripe webhook (P13)",
        account_field="account_id",
        export=False,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        reason="Not exported: an index of the customer id, which the billing export already holds.",
    ),
    FirestorePlace(
        "billing_invoices",
        category="billing",
        purpose="The account's Stripe invoices: ids, status, amounts, currency, periods, hosted invoice URL "
        "(P13, P17); receipts are mailed from them",
        account_field="account_id",
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        reason="Stripe keeps the invoices themselves (its own legal ground); this copy goes with the account.",
    ),
    FirestorePlace(
        "billing_events_pending",
        category="billing",
        purpose="Stripe events parked (customer tied to no account) or failed, for the reconcile command (P13)",
        account_field="account_hint",
        export=False,
        erasure="expire",
        retention=timedelta(days=90),
        ttl_field="expire_at",
        reason="Holds only Stripe ids (event, object, customer) and at most the account id; no payload, no "
        "name or email; the billing erasure deletes its customer's, the TTL the rest within 90 days.",
    ),
    FirestorePlace(
        "marketing_consents",
        category="marketing",
        purpose="The account holder's current answer to marketing mail: yes or no, when, how (P18)",
        account_field=None,
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        export_fields=("marketing", "changed_at", "source"),
        reason="No document means no consent. The mailer reads it before every marketing mail.",
    ),
    FirestorePlace(
        "marketing_consent_history",
        category="marketing",
        purpose="Proof of consent (GDPR Art. 7(1)): every change of the marketing answer, when, what, "
        "source (sign-up, settings, unsubscribe link, support, DPO) and who made it (P18)",
        account_field="account_id",
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
        export_fields=("marketing", "at", "source", "by"),
        reason="Kept while the account exists, as the proof; erased with it. The export says who made each "
        "change (holder, staff, link) without naming staff members.",
    ),
)

# Collections that hold no personal data at all, declared so the after-suite check knows them.
SYSTEM: tuple[FirestorePlace, ...] = (
    FirestorePlace(
        "audit_log",
        category="audit",
        purpose="Tamper-evident log of every staff access and admin call (P10)",
        account_field="target_account_id",
        export=True,
        erasure="keep",
        retention=timedelta(days=365 * 6),
        reason="Holds opaque ids of staff and accounts and what was done; kept as proof of accountability "
        "(GDPR Art. 5(2)). Once the account is erased its id designates no one. The free-text reason staff "
        "gave is kept 1 year (`reason_purge_at`: a year for the holder and the DPO to review an access and "
        "its stated reason), then the retention sweep removes it; the entry keeps only its SHA-256, inside "
        "the hash chain. Each entry is kept 6 years (`purge_at`), then the sweep deletes it, only a "
        "contiguous run from the start of the chain, moving the chain's tail with it so the chain still "
        "verifies. An entry written before these dates existed keeps its reason (its hash covers it) and goes 6 "
        "years after its `at`.",
        export_fields=("sequence", "at", "action", "reason", "actor_roles"),
    ),
    FirestorePlace(
        "deletion_records",
        category="deletion_records",
        purpose="Proof of each erasure (P11): request id, opaque account id, timestamps, each step's outcome",
        account_field="account_id",
        export=False,
        erasure="keep",
        retention=timedelta(days=365 * 6),
        reason="Holds no email, name or IP: only opaque ids, timestamps and outcomes, kept as proof that the "
        "erasure was done (GDPR Art. 5(2), 17).",
    ),
    FirestorePlace(
        "idempotency_records",
        category="system",
        purpose="Do each webhook event and job once (shared/idempotency.py): state of a unit of work",
        account_field=None,
        export=False,
        erasure="keep",
        retention=timedelta(days=30),
        ttl_field="expire_at",
        reason="Holds the SHA-256 of a work key, a scope label, a state and timestamps; never a key, a "
        "payload or an account id. Expires (TTL) within 30 days.",
    ),
    FirestorePlace(
        "telemetry_counters",
        category="analytics",
        purpose="Daily aggregate reports of product telemetry and web analytics (P12, P23)",
        account_field=None,
        export=False,
        erasure="keep",
        retention=timedelta(days=760),
        ttl_field="expire_at",
        reason="Counts per day and value (event, country, browser family, page...) and HyperLogLog sketches of "
        "visitor hashes keyed by a daily salt deleted after 48 hours: no IP address, user agent, account id "
        "or email, nothing that can be tied to a person once the salt is gone. Kept 25 months.",
    ),
    FirestorePlace(
        "telemetry_salts",
        category="analytics",
        purpose="The random daily salt of the visitor hash of web analytics (P23)",
        account_field=None,
        export=False,
        erasure="expire",
        retention=timedelta(hours=48),
        ttl_field="expire_at",
        reason="32 random bytes per day, related to no one; deleted 48 hours after the day began (TTL, and "
        "by the ingest whenever it creates a new salt), so no visitor can be followed across days.",
    ),
    FirestorePlace(
        "telemetry_messages",
        category="analytics",
        purpose="Telemetry messages already counted, so a redelivery is not counted twice (P12)",
        account_field=None,
        export=False,
        erasure="expire",
        retention=timedelta(days=8),
        ttl_field="expire_at",
        reason="A digest of a Pub/Sub message id, a time and an event count; expires after Pub/Sub's "
        "7-day redelivery window.",
    ),
    FirestorePlace(
        "retention_sweep_state",
        category="system",
        purpose="Progress of the retention sweep's one-time backfill of account purge dates (P27)",
        account_field=None,
        export=False,
        erasure="keep",
        retention=None,
        reason="One document: a done flag and the last account id the backfill reached (an opaque id).",
    ),
    FirestorePlace(
        "audit_chain",
        category="audit",
        purpose="Head and tail of the audit log's hash chain, and how far its reasons are redacted",
        account_field=None,
        export=False,
        erasure="keep",
        retention=None,
        reason="Three documents: the head and the tail (a sequence number and a hash each) and the "
        "redaction mark (a date).",
    ),
)

STORAGE: tuple[StoragePlace, ...] = (
    StoragePlace(
        "TELEMETRY_ARCHIVE_BUCKET",
        prefix="product-events/account={account_id}/",
        category="product_telemetry",
        purpose="Raw product telemetry (features used) for debugging, customer service and capacity planning (P12)",
        export=True,
        erasure="delete",
        retention=timedelta(days=90),
        reason="Newline-delimited JSON under dt=<day>/, one object per message; each line holds the opaque "
        "account_id, the plan and country/browser/OS/device families, never an IP address, a user agent or "
        "an email. Deleted after 90 days by the bucket's lifecycle rule.",
    ),
    StoragePlace(
        "BUSINESS_DATA_BUCKET",
        prefix="accounts/{account_id}/",
        category="business_files",
        purpose="Provide the service: the customer's business files, confidential (P20)",
        export=True,
        erasure="delete",
        retention=ACCOUNT_LIFETIME,
    ),
    StoragePlace(
        "EXPORTS_BUCKET",
        prefix="exports/{account_id}/",
        category="exports",
        purpose="Data export archives for the account holder (P26, GDPR Art. 15 and 20)",
        export=False,
        erasure="delete",
        retention=timedelta(days=7),
        reason="Not exported: an earlier copy of the export itself; deleted after 7 days (bucket lifecycle).",
    ),
)

QUEUES: tuple[QueuePlace, ...] = (
    QueuePlace(
        "mail-outbox",
        category="profile",
        purpose="Mail waiting to be sent by the mailer function: recipient, names, single-use links (P16, P25, P29)",
        retention=timedelta(days=15),
        reason="Kept by the topic 1 day after publishing; a mail that cannot be delivered waits up to 7 days, "
        "then up to 7 days in mail-outbox-dead-letter for the team (15 days at most). Its links expire "
        "within the hour.",
    ),
    QueuePlace(
        "consent-sync",
        category="marketing",
        purpose="Marketing consent changes waiting to reach HubSpot and Intercom: an account id (P18)",
        retention=timedelta(days=15),
        reason="Holds only the account id. Kept by the topic 1 day after publishing; a change that cannot be "
        "passed on waits up to 7 days, then up to 7 days in consent-sync-dead-letter (15 days at most).",
    ),
    QueuePlace(
        "auth-requests",
        category="profile",
        purpose="Forgot-password and resend-verification requests waiting for the auth worker: an address (P22)",
        retention=timedelta(days=15),
        reason="Kept by the topic 1 day after publishing; an unhandled request waits up to 7 days, then up to 7 "
        "days in auth-requests-dead-letter (15 days at most).",
    ),
)

PROCESSORS: tuple[Processor, ...] = (
    Processor(
        "Google",
        purpose="Hosting (Google Cloud Platform) and Google sign-in (Firebase Authentication)",
        categories=("profile", "sessions", "security_events", "business_files", "product_telemetry"),
        hosts=(
            "googleapis.com",
            "identitytoolkit.googleapis.com",
            "securetoken.googleapis.com",
            "www.googleapis.com",
            "firestore.googleapis.com",
            "storage.googleapis.com",
            "pubsub.googleapis.com",
        ),
        location="EU (europe-west1, eur3)",
        safeguards="Google Cloud Data Processing Addendum, Standard Contractual Clauses",
        export="The Firebase Authentication user: uid, email, names, providers, sign-in timestamps.",
        erasure="Firebase Authentication delete_user (permanent), by Firebase uid and by email. Firestore "
        "documents and Cloud Storage objects are erased place by place from this map.",
        retention="While the account is active, then 12 months after its last use (P27). Google removes "
        "deleted data from its backups within the deletion period of its Data Processing Addendum.",
    ),
    Processor(
        "Stripe",
        purpose="Payments and subscriptions (P13, P17)",
        categories=("billing",),
        hosts=("api.stripe.com",),
        location="EU and US",
        safeguards="Stripe Data Processing Agreement, EU-US Data Privacy Framework",
        export="The customer (names, email, billing address, tax ids), its subscriptions and its invoices; "
        "never card or payment method data (P13).",
        erasure="DELETE /v1/customers/{id} (permanent; cancels its subscriptions), for the account's customer "
        "and every customer with its email. Stripe keeps the payment records financial law requires of it, "
        "as a controller on its own legal ground.",
        retention="While the account is active, then 12 months after its last use (P27).",
    ),
    Processor(
        "Zendesk",
        purpose="Customer support tickets (P7, P8)",
        categories=("support",),
        hosts=("zendesk.com",),
        location="EU",
        safeguards="Zendesk Data Processing Agreement, Binding Corporate Rules",
        export="The support user and the tickets they requested, with their comments.",
        erasure="DELETE /api/v2/users/{id} (soft delete), then DELETE /api/v2/deleted_users/{id} (permanent); "
        "soft-deleted users with the address are purged too.",
        retention="While the account is active, then 12 months after its last use (P27).",
    ),
    Processor(
        "Intercom",
        purpose="In-app messaging with customers",
        categories=("profile",),
        hosts=("api.intercom.io", "api.eu.intercom.io"),
        location="EU",
        safeguards="Intercom Data Processing Agreement, EU-US Data Privacy Framework",
        export="Every contact (user or lead) with the email or the account id as external id.",
        erasure="POST /contacts/search by email and external id, then DELETE /contacts/{id} for each (permanent).",
        retention="While the account is active, then 12 months after its last use (P27).",
    ),
    Processor(
        "HubSpot",
        purpose="Newsletters, offers and usage tips for those who consented (P18)",
        categories=("marketing",),
        hosts=("api.hubapi.com",),
        location="EU",
        safeguards="HubSpot Data Processing Agreement, EU-US Data Privacy Framework",
        export="The marketing contact: email, names, company, lifecycle stage, opt-out.",
        erasure="POST /crm/v3/objects/contacts/gdpr-delete by email (permanent; HubSpot also stops tracking "
        "the address).",
        retention="While marketing consent stands (P18) and the account is active, then 12 months after its "
        "last use (P27).",
    ),
)


def firestore_place(collection: str) -> FirestorePlace:
    for place in (*FIRESTORE, *SYSTEM):
        if place.collection == collection:
            return place
    raise KeyError(f"{collection!r} is not declared in shared/datamap.py")


def declared_collections() -> set[str]:
    return {place.collection for place in (*FIRESTORE, *SYSTEM)}


def processor_hosts() -> set[str]:
    return {host for processor in PROCESSORS for host in processor.hosts}


def host_allowed(host: str) -> bool:
    """True when `host` is a processor's host or a subdomain of one (P14)."""
    host = host.lower().rstrip(".")
    return any(host == allowed or host.endswith("." + allowed) for allowed in processor_hosts())
