"""The composition root: the one place that wires adapters into services (Cosmic Python).

Entry points ask for a service here; tests swap adapters by building services with `build_*`
directly. Everything is created on first use and shared by the request threads of an instance, so
a cold start pays only for what the function it serves touches.
"""

from __future__ import annotations

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
    from shared.privacy.service import PrivacyService
    from shared.privacy.worker import PrivacyWorker

if TYPE_CHECKING:  # billing is imported on first use: the auth function's cold start never loads stripe
    from shared.billing.service import BillingService

if TYPE_CHECKING:  # telemetry is imported on first use (geoip and ua-parser load only where they serve)
    from shared.telemetry.aggregator import Aggregator as TelemetryAggregator
    from shared.telemetry.ingest import IngestService as TelemetryIngest
    from shared.telemetry.reports import ReportService as TelemetryReports

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
    }
    wired = _wire(adapters, overrides)
    stores = overrides.get("stores") or firestore_stores(
        overrides.get("db") or firestore_client(config.project_id), config.security_event_retention_days
    )
    config.require_keys("password_pepper")
    ctx = IdentityContext(stores=stores, settings=config, clock=overrides.get("clock", utcnow), **wired)
    return IdentityService(ctx)


def _enqueuer(config: Settings, topic: str) -> Any:
    """Publish `{kind, payload}` to a topic and wait for the publish to be acknowledged."""
    from shared.adapters.pubsub import publish_and_wait

    return lambda kind, payload: publish_and_wait(config.project_id, topic, {"kind": kind, "payload": payload})


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


def reset() -> None:
    """Forget every wired service (tests that change the environment)."""
    for accessor in _ProcessWide.every:
        accessor.forget()
