"""The composition root: the one place that wires adapters into services (Cosmic Python).

Entry points ask for a service here; tests swap adapters by building services with `build_*`
directly. Everything is created on first use and shared by the request threads of an instance, so
a cold start pays only for what the function it serves touches.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from shared.adapters.firestore import firestore_client
from shared.adapters.google_identity import FirebaseGoogleVerifier
from shared.adapters.mail import SmtpMailer
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

_lock = threading.Lock()


def settings() -> Settings:
    value = get_settings()
    configure_logging(value.project_id, value.log_level)
    return value


def build_identity_service(config: Settings, **overrides: Any) -> IdentityService:
    """The identity service with its production adapters; tests pass `mailer=`, `clock=`, `google=`…"""
    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "hasher": lambda: PasswordHasher(config.password_pepper, config.bcrypt_cost),
        "mailer": lambda: SmtpMailer(config),
        "google": lambda: FirebaseGoogleVerifier(config.project_id),
    }
    wired = {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}
    return IdentityService(settings=config, clock=overrides.get("clock", utcnow), **wired)


@cache
def _identity_service() -> IdentityService:
    return build_identity_service(settings())


def identity_service() -> IdentityService:
    with _lock:
        return _identity_service()


def _publisher(config: Settings) -> Any:
    from shared.adapters.pubsub import publish_and_wait

    return lambda topic, payload: publish_and_wait(config.project_id, topic, payload)


def build_billing_service(config: Settings, **overrides: Any) -> BillingService:
    """The billing service with its production adapters; tests pass `stripe=`, `mailer=`, `clock=`…"""
    from shared.adapters.stripe_api import StripeClientApi
    from shared.billing.plans import Catalogue
    from shared.billing.service import BillingService
    from shared.idempotency import IdempotencyStore

    clock = overrides.get("clock", utcnow)
    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "stripe": lambda: StripeClientApi.from_settings(config),
        "mailer": lambda: SmtpMailer(config),
        "catalogue": lambda: Catalogue.from_settings(config),
    }
    wired = {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}
    idempotency = overrides.get("idempotency") or IdempotencyStore(wired["db"], clock=clock)
    return BillingService(settings=config, idempotency=idempotency, clock=clock, **wired)


@cache
def _billing_service() -> BillingService:
    return build_billing_service(settings())


def billing_service() -> BillingService:
    with _lock:
        return _billing_service()


def build_privacy_service(config: Settings, **overrides: Any) -> PrivacyService:
    """Data subject requests (privacy and admin functions); tests pass `publish=`, `mailer=`, `adapters=`…"""
    from shared.adapters.storage import storage_client
    from shared.audit import AuditLog
    from shared.privacy.service import PrivacyService
    from shared.processors import processor_adapters

    clock = overrides.get("clock", utcnow)
    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "storage": lambda: storage_client(config.project_id),
        "mailer": lambda: SmtpMailer(config),
        "publish": lambda: _publisher(config),
        "identity": lambda: identity_service,
        "adapters": lambda: lambda: processor_adapters(config),
    }
    wired = {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}
    audit = overrides.get("audit") or AuditLog(wired["db"], clock=clock)
    return PrivacyService(settings=config, audit=audit, clock=clock, **wired)


def build_privacy_worker(config: Settings, **overrides: Any) -> PrivacyWorker:
    """The privacy-jobs worker; tests pass `adapters=` (a callable), `publish=`, `clock=`, `sleep=`…"""
    from shared.adapters.storage import storage_client
    from shared.privacy.worker import PrivacyWorker
    from shared.processors import processor_adapters

    adapters: dict[str, Any] = {
        "db": lambda: firestore_client(config.project_id),
        "storage": lambda: storage_client(config.project_id),
        "mailer": lambda: SmtpMailer(config),
        "publish": lambda: _publisher(config),
        "adapters": lambda: lambda: processor_adapters(config),
    }
    wired = {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}
    extra = {k: overrides[k] for k in ("clock", "sleep", "monotonic") if k in overrides}
    return PrivacyWorker(settings=config, **wired, **extra)


@cache
def _privacy_service() -> PrivacyService:
    return build_privacy_service(settings())


def privacy_service() -> PrivacyService:
    with _lock:
        return _privacy_service()


@cache
def _privacy_worker() -> PrivacyWorker:
    return build_privacy_worker(settings())


def privacy_worker() -> PrivacyWorker:
    with _lock:
        return _privacy_worker()


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
    wired = {name: overrides[name] if name in overrides else make() for name, make in adapters.items()}
    return IngestService(config, clock=clock, **wired)


def build_telemetry_aggregate_service(config: Settings, **overrides: Any) -> TelemetryAggregator:
    """The telemetry-aggregator's use case; tests pass `db=`, `archive=`, `accounts=`, `clock=`, `rng=`."""
    from shared.adapters.storage import bucket, storage_client
    from shared.telemetry.aggregator import AccountLookup, Aggregator
    from shared.telemetry.archive import StorageArchive

    clock = overrides.get("clock", utcnow)
    db = overrides.get("db") or firestore_client(config.project_id)
    if "archive" in overrides:
        archive = overrides["archive"]
    else:
        config.require_keys("telemetry_archive_bucket")
        archive = StorageArchive(lambda: bucket(storage_client(config.project_id), config.telemetry_archive_bucket))
    accounts = overrides.get("accounts") or AccountLookup(lambda: db, clock)
    shards = overrides.get("shards", config.telemetry_counter_shards)
    return Aggregator(db, archive=archive, accounts=accounts, shards=shards, clock=clock, rng=overrides.get("rng"))


def build_telemetry_report_service(config: Settings, **overrides: Any) -> TelemetryReports:
    """Staff reports; tests pass `db=`, `clock=`, `audit=`."""
    from shared.audit import AuditLog
    from shared.telemetry.reports import ReportService

    clock = overrides.get("clock", utcnow)
    db = overrides.get("db") or firestore_client(config.project_id)
    audit = overrides.get("audit") or AuditLog(db, clock=clock)
    default_site = next((s for s in config.telemetry_sites if "*" not in s), "")
    return ReportService(db, clock=clock, default_site=default_site, audit=audit)


@cache
def _telemetry_ingest_service() -> TelemetryIngest:
    return build_telemetry_ingest_service(settings())


def telemetry_ingest_service() -> TelemetryIngest:
    with _lock:
        return _telemetry_ingest_service()


@cache
def _telemetry_aggregate_service() -> TelemetryAggregator:
    return build_telemetry_aggregate_service(settings())


def telemetry_aggregate_service() -> TelemetryAggregator:
    with _lock:
        return _telemetry_aggregate_service()


@cache
def _telemetry_report_service() -> TelemetryReports:
    return build_telemetry_report_service(settings())


def telemetry_report_service() -> TelemetryReports:
    with _lock:
        return _telemetry_report_service()


def reset() -> None:
    """Forget every wired service (tests that change the environment)."""
    with _lock:
        _identity_service.cache_clear()
        _billing_service.cache_clear()
        _privacy_service.cache_clear()
        _privacy_worker.cache_clear()
        _telemetry_ingest_service.cache_clear()
        _telemetry_aggregate_service.cache_clear()
        _telemetry_report_service.cache_clear()
