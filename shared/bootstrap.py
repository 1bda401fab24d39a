"""The composition root: the one place that wires adapters into services (Cosmic Python).

Entry points ask for a service here; tests swap adapters by building services with `build_*`
directly. Everything is created on first use and shared by the request threads of an instance, so
a cold start pays only for what the function it serves touches.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from shared.adapters.firestore import firestore_client
from shared.adapters.google_identity import FirebaseGoogleVerifier
from shared.adapters.mail import outbox_mailer
from shared.config import Settings, get_settings
from shared.identity.passwords import PasswordHasher
from shared.identity.service import IdentityService, utcnow
from shared.observability import configure_logging

if TYPE_CHECKING:  # the privacy modules are imported on first use (the auth function never loads them)
    from shared.privacy.cancellation import Cancellation
    from shared.privacy.service import PrivacyService
    from shared.privacy.worker import PrivacyWorker

if TYPE_CHECKING:  # billing is imported on first use: the auth function's cold start never loads stripe
    from shared.billing.service import BillingService

if TYPE_CHECKING:  # the retention sweep is imported on first use (its own function only)
    from shared.retention.sweep import RetentionSweep

if TYPE_CHECKING:  # telemetry is imported on first use (geoip and ua-parser load only where they serve)
    from shared.telemetry.aggregator import Aggregator as TelemetryAggregator
    from shared.telemetry.ingest import IngestService as TelemetryIngest
    from shared.telemetry.reports import ReportService as TelemetryReports

if TYPE_CHECKING:  # consent is imported on first use
    from shared.consent.service import ConsentService

T = TypeVar("T")


class _ProcessWide(Generic[T]):
    """One instance per process, built from the settings on first use, then read without a lock."""

    every: ClassVar[list[_ProcessWide[Any]]] = []

    def __init__(self, build: Callable[[Settings], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()
        _ProcessWide.every.append(self)

    def __call__(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build(settings())
        return self._value

    def forget(self) -> None:
        with self._lock:
            self._value = None


def _wire(adapters: dict[str, Callable[[], Any]], overrides: dict[str, Any]) -> dict[str, Any]:
    """Each adapter from `overrides` when a test gives it, else built by its production factory."""
    return {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}


def settings() -> Settings:
    value = get_settings()
    configure_logging(value.project_id, value.log_level)
    return value


def build_identity_service(config: Settings, **overrides: Any) -> IdentityService:
    """The identity use cases with their production adapters; tests pass `stores=` (memory_stores()),
    `mailer=`, `clock=`, `google=`, `enqueue=`…"""
    from shared.identity.context import AUTH_REQUESTS_TOPIC, IdentityContext
    from shared.identity.stores import firestore_stores

    adapters: dict[str, Any] = {
        "hasher": lambda: PasswordHasher(config.password_pepper, config.bcrypt_cost),
        "mailer": lambda: outbox_mailer(config),
        "google": lambda: FirebaseGoogleVerifier(config.project_id),
        "enqueue": lambda: _enqueuer(config, AUTH_REQUESTS_TOPIC),
        # The sign-up's marketing choice is the first entry of the consent history (P18).
        "record_consent": lambda: (
            lambda account_id, marketing, source: consent_service().change(account_id, marketing, source)
        ),
        # A reactivation may resume the marketing its cancellation stopped at the processors (P18).
        "resync_consent": lambda: _resync_consent,
    }
    wired = _wire(adapters, overrides)
    stores = overrides.get("stores") or firestore_stores(
        overrides.get("db") or firestore_client(config.project_id), config.security_event_retention_days
    )
    config.require_keys("password_pepper")
    ctx = IdentityContext(stores=stores, settings=config, clock=overrides.get("clock", utcnow), **wired)
    return IdentityService(ctx)


def _resync_consent(account_id: str) -> None:
    """Tell the processors that send marketing the account's effective answer again (P18)."""
    consent_service().resync(account_id)


def _enqueuer(config: Settings, topic: str) -> Any:
    """Publish `{kind, payload}` to a topic and wait for the publish to be acknowledged."""
    from shared.adapters.pubsub import publish_and_wait
    from shared.errors import Unavailable

    def enqueue(kind: str, payload: dict[str, Any]) -> None:
        try:
            publish_and_wait(config.project_id, topic, {"kind": kind, "payload": payload}, timeout=10)
        except Exception as exc:  # the topic is unreachable: nothing was queued, the caller may retry
            raise Unavailable("The request could not be queued; try again shortly.", slug="queue-unavailable") from exc

    return enqueue


identity_service: _ProcessWide[IdentityService] = _ProcessWide(build_identity_service)


def _publisher(config: Settings) -> Any:
    from shared.adapters.pubsub import publish_and_wait

    return lambda topic, payload: publish_and_wait(config.project_id, topic, payload)


def build_billing_service(config: Settings, **overrides: Any) -> BillingService:
    """The billing service with its production adapters; tests pass `stripe=`, `mailer=`, `clock=`…"""
    from shared.adapters.stripe_api import StripeClientApi
    from shared.billing.plans import Catalogue
    from shared.billing.service import BillingService
    from shared.idempotency import IdempotencyStore
    from shared.identity.stores import FirestoreAccounts

    clock = overrides.get("clock", utcnow)
    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "stripe": lambda: StripeClientApi.from_settings(config),
        "mailer": lambda: outbox_mailer(config),
        "catalogue": lambda: Catalogue.from_settings(config),
        "accounts": lambda: FirestoreAccounts(firestore_client(config.project_id)),
    }
    wired = _wire(adapters, overrides)
    idempotency = overrides.get("idempotency") or IdempotencyStore(wired["db"], clock=clock)
    return BillingService(settings=config, idempotency=idempotency, clock=clock, **wired)


billing_service: _ProcessWide[BillingService] = _ProcessWide(build_billing_service)


def build_privacy_service(config: Settings, **overrides: Any) -> PrivacyService:
    """Data subject requests (privacy and admin functions); tests pass `publish=`, `mailer=`, `adapters=`…"""
    from shared.adapters.storage import default_credentials, storage_client
    from shared.audit import AuditLog
    from shared.identity.stores import FirestoreAccounts
    from shared.privacy.service import PrivacyService
    from shared.processors import processor_adapters

    clock = overrides.get("clock", utcnow)
    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "storage": lambda: storage_client(config.project_id),
        "mailer": lambda: outbox_mailer(config),
        "publish": lambda: _publisher(config),
        "identity": lambda: identity_service,
        "adapters": lambda: lambda: processor_adapters(config),
        "url_signer": lambda: default_credentials,
        "accounts": lambda: FirestoreAccounts(firestore_client(config.project_id)),
        # An objection stops marketing: HubSpot and Intercom are told (P18, P26).
        "marketing_stopped": lambda: _resync_consent,
    }
    wired = _wire(adapters, overrides)
    audit = overrides.get("audit") or AuditLog(wired["db"], clock=clock)
    return PrivacyService(settings=config, audit=audit, clock=clock, **wired)


def build_privacy_worker(config: Settings, **overrides: Any) -> PrivacyWorker:
    """The privacy-jobs worker; tests pass `adapters=` (a callable), `publish=`, `clock=`, `sleep=`…"""
    from shared.adapters.storage import storage_client
    from shared.identity.stores import FirestoreAccounts
    from shared.privacy.worker import PrivacyWorker
    from shared.processors import processor_adapters

    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "storage": lambda: storage_client(config.project_id),
        "mailer": lambda: outbox_mailer(config),
        "publish": lambda: _publisher(config),
        "adapters": lambda: lambda: processor_adapters(config),
        "accounts": lambda: FirestoreAccounts(firestore_client(config.project_id)),
    }
    wired = _wire(adapters, overrides)
    extra = {k: overrides[k] for k in ("clock", "sleep", "monotonic") if k in overrides}
    return PrivacyWorker(settings=config, **wired, **extra)


privacy_service: _ProcessWide[PrivacyService] = _ProcessWide(build_privacy_service)


privacy_worker: _ProcessWide[PrivacyWorker] = _ProcessWide(build_privacy_worker)


class _LazyStripe:
    """The Stripe adapter, made (and STRIPE_SECRET_KEY required) only when a call reaches Stripe."""

    def __init__(self, config: Settings) -> None:
        self._config = config
        self._api: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._api is None:
            from shared.adapters.stripe_api import StripeClientApi

            self._api = StripeClientApi.from_settings(self._config)
        return getattr(self._api, name)


def build_cancellation_service(config: Settings, **overrides: Any) -> Cancellation:
    """Account cancellation (P19: privacy and admin functions, the CLI); tests pass `accounts=`, `identity=`
    (a callable), `billing=` (a callable), `mailer=`, `clock=`."""
    from shared.identity.stores import FirestoreAccounts
    from shared.privacy.cancellation import Cancellation

    adapters: dict[str, Any] = {
        "accounts": lambda: FirestoreAccounts(firestore_client(config.project_id)),
        "identity": lambda: identity_service,
        # Billing (and stripe) load on the first cancellation; Stripe itself only for a live subscription.
        "billing": lambda: functools.cache(lambda: build_billing_service(config, stripe=_LazyStripe(config))),
        "mailer": lambda: outbox_mailer(config),
        # A cancelled account gets no marketing: HubSpot and Intercom are told (P18, P19).
        "marketing_stopped": lambda: _resync_consent,
    }
    wired = _wire(adapters, overrides)
    return Cancellation(settings=config, clock=overrides.get("clock", utcnow), **wired)


cancellation_service: _ProcessWide[Cancellation] = _ProcessWide(build_cancellation_service)


# --- Telemetry (P12, P23) -------------------------------------------------------------------------


def build_telemetry_ingest_service(config: Settings, **overrides: Any) -> TelemetryIngest:
    """The ingest of the telemetry function; tests pass `publish=`, `salts=`, `countries=`, `clock=`."""
    from shared.adapters.pubsub import publish
    from shared.telemetry.ingest import IngestService
    from shared.telemetry.model import TOPIC
    from shared.telemetry.privacy import CountryLookup
    from shared.telemetry.salts import DailySalts

    clock = overrides.get("clock", utcnow)
    adapters: dict[str, Any] = {
        "publish": lambda: lambda payload, attrs: publish(config.project_id, TOPIC, payload, **attrs),
        "salts": lambda: DailySalts(lambda: firestore_client(config.project_id), clock),
        "countries": CountryLookup,
    }
    wired = _wire(adapters, overrides)
    return IngestService(config, clock=clock, **wired)


def build_telemetry_aggregate_service(config: Settings, **overrides: Any) -> TelemetryAggregator:
    """The telemetry-aggregator's use case; tests pass `db=`, `archive=`, `accounts=` (an AccountStore),
    `lookup=` (an AccountLookup), `clock=`, `rng=`."""
    from shared.adapters.storage import bucket, storage_client
    from shared.identity.stores import FirestoreAccounts
    from shared.telemetry.aggregator import AccountLookup, Aggregator
    from shared.telemetry.archive import StorageArchive

    clock = overrides.get("clock", utcnow)
    db = overrides.get("db") or firestore_client(config.project_id)
    if "archive" in overrides:
        archive = overrides["archive"]
    else:
        config.require_keys("telemetry_archive_bucket")
        archive = StorageArchive(lambda: bucket(storage_client(config.project_id), config.telemetry_archive_bucket))
    store = _wire({"accounts": lambda: FirestoreAccounts(db)}, overrides)["accounts"]
    lookup = overrides.get("lookup") or AccountLookup(lambda: store, lambda: db, clock)
    shards = overrides.get("shards", config.telemetry_counter_shards)
    return Aggregator(db, archive=archive, accounts=lookup, shards=shards, clock=clock, rng=overrides.get("rng"))


def build_telemetry_report_service(config: Settings, **overrides: Any) -> TelemetryReports:
    """Staff reports; tests pass `db=`, `clock=`, `audit=`."""
    from shared.audit import AuditLog
    from shared.telemetry.reports import ReportService

    clock = overrides.get("clock", utcnow)
    db = overrides.get("db") or firestore_client(config.project_id)
    audit = overrides.get("audit") or AuditLog(db, clock=clock)
    default_site = next((s for s in config.telemetry_sites if "*" not in s), "")
    return ReportService(db, clock=clock, default_site=default_site, audit=audit)


telemetry_ingest_service: _ProcessWide[TelemetryIngest] = _ProcessWide(build_telemetry_ingest_service)


telemetry_aggregate_service: _ProcessWide[TelemetryAggregator] = _ProcessWide(build_telemetry_aggregate_service)


telemetry_report_service: _ProcessWide[TelemetryReports] = _ProcessWide(build_telemetry_report_service)


# --- Marketing consent (P18) -----------------------------------------------------------------------


def build_consent_service(config: Settings, **overrides: Any) -> ConsentService:
    """Marketing consent (shared/consent/service.py); tests pass `store=` (MemoryConsentStore), `publish=`,
    `tokens=` (a callable returning UnsubscribeTokens), `clock=`."""
    from shared.consent.service import ConsentService
    from shared.consent.stores import FirestoreConsentStore
    from shared.consent.tokens import UnsubscribeTokens

    def tokens() -> UnsubscribeTokens:  # only the unsubscribe routes need the key
        config.require_keys("unsubscribe_signing_key")
        return UnsubscribeTokens(config.unsubscribe_signing_key)

    adapters: dict[str, Any] = {
        "store": lambda: FirestoreConsentStore(firestore_client(config.project_id)),
        "publish": lambda: _publisher(config),
        "tokens": lambda: tokens,
    }
    wired = _wire(adapters, overrides)
    return ConsentService(
        wired["store"], publish=wired["publish"], tokens=wired["tokens"], clock=overrides.get("clock", utcnow)
    )


consent_service: _ProcessWide[ConsentService] = _ProcessWide(build_consent_service)


def build_retention_sweep(config: Settings, **overrides: Any) -> RetentionSweep:
    """The retention sweep (P27); tests pass `store=` (MemoryRetentionStore), `objects=`, `lease=`, `privacy=`
    (a callable returning something with `start_retention_erasure`), `mailer=`, `audit=`, `clock=`, `db=`…"""
    from shared.adapters.storage import storage_client
    from shared.audit import AuditLog
    from shared.idempotency import IdempotencyStore
    from shared.retention.stores import FirestoreRetentionStore, IdempotencyLease, StorageObjects
    from shared.retention.sweep import RetentionSweep

    clock = overrides.get("clock", utcnow)
    db = overrides.get("db") or firestore_client(config.project_id)
    adapters: dict[str, Any] = {
        "store": lambda: FirestoreRetentionStore(db),
        "objects": lambda: StorageObjects(storage_client(config.project_id)),
        "lease": lambda: IdempotencyLease(IdempotencyStore(db, clock=clock)),
        "privacy": lambda: privacy_service,
        "mailer": lambda: outbox_mailer(config),
        "audit": lambda: AuditLog(db, clock=clock),
    }
    return RetentionSweep(settings=config, clock=clock, **_wire(adapters, overrides))


retention_sweep: _ProcessWide[RetentionSweep] = _ProcessWide(build_retention_sweep)


def reset() -> None:
    """Forget every wired service (tests that change the environment)."""
    for accessor in _ProcessWide.every:
        accessor.forget()
