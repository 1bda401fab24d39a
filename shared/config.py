"""Configuration from the environment (Secret Manager injects secrets as env vars in production)."""

from __future__ import annotations

import base64
import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from shared import datamap

LOCAL = "local"
# Where the client address is read from X-Forwarded-For. Google's external Application Load Balancer
# appends "<client>, <load balancer>" to whatever the client sent, so the client is the second entry
# from the end; anything before it is client-supplied and cannot be trusted. Locally the gateway
# forwards the header as the caller wrote it, so the first hop is the client.
CLIENT_IP_SOURCES = ("load-balancer", "first-hop")
STRIPE_API = "https://api.stripe.com"
# During a rotation of the webhook signing secret Stripe signs with both the old and the new one.
MAX_WEBHOOK_SECRETS = 2


# Processor APIs (P24): the registry's hosts. The *_API_BASE overrides exist for local fakes only.
INTERCOM_API = "https://api.eu.intercom.io"
HUBSPOT_API = "https://api.hubapi.com"


class ConfigError(RuntimeError):
    """A required setting is missing or malformed: the function must not start half-configured."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in {"1", "true", "yes", "on"}


def _telemetry_sites(env: dict[str, str], app_env: str) -> tuple[str, ...]:
    """TELEMETRY_SITES: comma-separated site names; `*.test` admits any name under .test (local default)."""
    default = "wizyvision.com,*.test" if app_env == LOCAL else "wizyvision.com"
    return tuple(s.strip().lower() for s in env.get("TELEMETRY_SITES", default).split(",") if s.strip())


def _key(env: dict[str, str], name: str) -> bytes:
    """A secret key, or b"" when this function was not given it (only functions that use it are)."""
    raw = env.get(name, "").strip()
    if not raw:
        return b""
    try:
        value = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError as exc:
        raise ConfigError(f"{name} must be base64url") from exc
    if len(value) < 32:
        raise ConfigError(f"{name} must hold at least 32 bytes")
    return value


def _processor_base(env: dict[str, str], name: str, default: str, app_env: str) -> str:
    """A processor's API base: HTTPS on a host of shared/datamap.py, or anything in local mode (P14)."""
    base = (env.get(name, "").strip() or default).rstrip("/")
    if base and app_env != LOCAL:
        parts = urlsplit(base)
        if parts.scheme != "https" or not datamap.host_allowed(parts.hostname or ""):
            raise ConfigError(f"{name} must be https:// on a processor host of shared/datamap.py (P14)")
    return base


def _zendesk_base(env: dict[str, str], app_env: str) -> str:
    subdomain = env.get("ZENDESK_SUBDOMAIN", "").strip().lower()
    if subdomain and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", subdomain):
        raise ConfigError("ZENDESK_SUBDOMAIN must be the bare subdomain (acme for acme.zendesk.com)")
    return _processor_base(env, "ZENDESK_API_BASE", f"https://{subdomain}.zendesk.com" if subdomain else "", app_env)


def _disabled_processors(env: dict[str, str]) -> frozenset[str]:
    names = {n.strip().lower() for n in env.get("PROCESSORS_DISABLED", "").split(",") if n.strip()}
    known = {p.name.lower() for p in datamap.PROCESSORS}
    if unknown := names - known:
        raise ConfigError(f"PROCESSORS_DISABLED names unknown processors {sorted(unknown)}; known: {sorted(known)}")
    return frozenset(names)


@dataclass(frozen=True)
class Settings:
    """Every knob the backend reads. Build with `Settings.from_env()`; tests may build one directly."""

    project_id: str
    app_env: str
    public_base_url: str
    app_url: str
    password_pepper: bytes = field(repr=False)
    totp_encryption_key: bytes = field(repr=False)
    client_ip_source: str = "first-hop"
    bcrypt_cost: int = 12
    session_idle_minutes: int = 30
    reauth_minutes: int = 10  # a step-up re-authentication counts this long (P25)
    session_absolute_hours: int = 12
    verification_token_minutes: int = 60
    reset_token_minutes: int = 60
    cors_allowed_origins: tuple[str, ...] = ()
    # Telemetry (P12, P23): sites that may send web analytics, raw product-event archive, counter shards.
    telemetry_sites: tuple[str, ...] = ("wizyvision.com",)
    telemetry_archive_bucket: str = ""
    telemetry_counter_shards: int = 4
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    mail_from: str = "WizyVision <no-reply@wizyvision.com>"
    dpo_email: str = "dpo@wizyvision.com"
    support_email: str = "support@wizyvision.com"
    security_event_retention_days: int = 395
    account_retention_months: int = 12  # P27: after the later of last use and cancellation
    retention_warning_days: int = 30  # the warning mail, this long before the purge
    # Data subject requests (P11, P26, P28): buckets, grace period, export lifetime, job retries.
    business_data_bucket: str = ""
    exports_bucket: str = ""
    erasure_grace_hours: int = 24
    export_retention_days: int = 7
    export_signed_urls: bool = False
    # Days that backups (Firestore point-in-time recovery) still hold erased data; said in the deletion mail.
    backup_window_days: int = 0
    privacy_step_max_attempts: int = 5
    privacy_retry_base_seconds: int = 30
    privacy_retry_max_seconds: int = 3600
    privacy_inline_wait_seconds: int = 20
    privacy_lease_seconds: int = 300
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    zendesk_api_base: str = ""
    zendesk_email: str = ""
    zendesk_api_token: str = field(default="", repr=False)
    intercom_api_base: str = INTERCOM_API
    intercom_token: str = field(default="", repr=False)
    hubspot_api_base: str = HUBSPOT_API
    hubspot_token: str = field(default="", repr=False)
    # The marketing subscription type that consent (P18) subscribes to and unsubscribes from in HubSpot.
    hubspot_subscription_id: str = ""
    # HMAC-SHA256 key of the one-click unsubscribe links of marketing mail (P18, shared/consent/tokens.py).
    unsubscribe_signing_key: bytes = field(default=b"", repr=False)
    processors_disabled: frozenset[str] = frozenset()  # lower-case names of shared/datamap.py processors
    processor_timeout_seconds: int = 10
    stripe_secret_key: str = field(default="", repr=False)
    stripe_webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    stripe_api_base: str = STRIPE_API
    stripe_timeout_seconds: int = 10
    stripe_webhook_tolerance_seconds: int = 300
    billing_plans_file: str = ""
    billing_plans_json: str = ""

    @property
    def is_local(self) -> bool:
        return self.app_env == LOCAL

    def require_keys(self, *names: str) -> None:
        """Fail the cold start of a function that needs a secret it was not given."""
        for name in names:
            if not getattr(self, name):
                raise ConfigError(
                    f"{name.upper()} is not set (Secret Manager in production, .local/secrets.env locally)"
                )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or ""
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        app_env = env.get("APP_ENV", "production").strip() or "production"
        cost = _int(env, "BCRYPT_COST", 12)
        if not 4 <= cost <= 31:
            raise ConfigError("BCRYPT_COST must be between 4 and 31")
        if cost < 12 and app_env != LOCAL:
            raise ConfigError("BCRYPT_COST below 12 is allowed only in local mode (P1)")
        ip_source = env.get("CLIENT_IP_SOURCE", "first-hop" if app_env == LOCAL else "load-balancer").strip()
        if ip_source not in CLIENT_IP_SOURCES:
            raise ConfigError(f"CLIENT_IP_SOURCE must be one of {', '.join(CLIENT_IP_SOURCES)}")
        origins = tuple(o.strip().rstrip("/") for o in env.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip())
        grace_hours = _int(env, "ERASURE_GRACE_HOURS", 24)
        if grace_hours < 0:
            raise ConfigError("ERASURE_GRACE_HOURS must be 0 or more")
        export_days = _int(env, "EXPORT_RETENTION_DAYS", 7)
        if not 1 <= export_days <= 7:
            raise ConfigError("EXPORT_RETENTION_DAYS must be between 1 and 7 (exports are deleted after 7 days)")
        webhook_secrets = tuple(s.strip() for s in env.get("STRIPE_WEBHOOK_SECRETS", "").split(",") if s.strip())
        if len(webhook_secrets) > MAX_WEBHOOK_SECRETS:
            raise ConfigError("STRIPE_WEBHOOK_SECRETS holds at most 2 secrets (the old and the new during a rotation)")
        stripe_api_base = (env.get("STRIPE_API_BASE", "").strip() or STRIPE_API).rstrip("/")
        if app_env != LOCAL and stripe_api_base != STRIPE_API:
            raise ConfigError(f"STRIPE_API_BASE may differ from {STRIPE_API} only in local mode (P14)")
        return cls(
            project_id=project,
            app_env=app_env,
            public_base_url=env.get("PUBLIC_BASE_URL", "http://localhost:8080").rstrip("/"),
            app_url=(env.get("APP_URL") or env.get("PUBLIC_BASE_URL", "http://localhost:8080")).rstrip("/"),
            password_pepper=_key(env, "PASSWORD_PEPPER"),
            totp_encryption_key=_key(env, "TOTP_ENCRYPTION_KEY"),
            bcrypt_cost=cost,
            client_ip_source=ip_source,
            session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 30),
            reauth_minutes=_int(env, "REAUTH_MINUTES", 10),
            session_absolute_hours=_int(env, "SESSION_ABSOLUTE_HOURS", 12),
            cors_allowed_origins=origins,
            telemetry_sites=_telemetry_sites(env, app_env),
            telemetry_archive_bucket=env.get("TELEMETRY_ARCHIVE_BUCKET", "").strip(),
            telemetry_counter_shards=min(64, max(1, _int(env, "TELEMETRY_COUNTER_SHARDS", 4))),
            smtp_host=env.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=_int(env, "SMTP_PORT", 25),
            smtp_username=env.get("SMTP_USERNAME", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_starttls=_bool(env, "SMTP_STARTTLS", False),
            mail_from=env.get("MAIL_FROM", "WizyVision <no-reply@wizyvision.com>"),
            dpo_email=env.get("DPO_EMAIL", "dpo@wizyvision.com"),
            support_email=env.get("SUPPORT_EMAIL", "support@wizyvision.com"),
            business_data_bucket=env.get("BUSINESS_DATA_BUCKET", "").strip(),
            exports_bucket=env.get("EXPORTS_BUCKET", "").strip(),
            erasure_grace_hours=grace_hours,
            export_retention_days=export_days,
            export_signed_urls=_bool(env, "EXPORT_SIGNED_URLS", app_env != LOCAL),
            backup_window_days=max(0, _int(env, "BACKUP_WINDOW_DAYS", 0)),
            privacy_step_max_attempts=max(1, _int(env, "PRIVACY_STEP_MAX_ATTEMPTS", 5)),
            privacy_retry_base_seconds=max(0, _int(env, "PRIVACY_RETRY_BASE_SECONDS", 30)),
            privacy_retry_max_seconds=max(0, _int(env, "PRIVACY_RETRY_MAX_SECONDS", 3600)),
            privacy_inline_wait_seconds=max(0, _int(env, "PRIVACY_INLINE_WAIT_SECONDS", 20)),
            privacy_lease_seconds=max(30, _int(env, "PRIVACY_LEASE_SECONDS", 300)),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 64 * 1024),
            account_retention_months=max(1, _int(env, "ACCOUNT_RETENTION_MONTHS", 12)),
            retention_warning_days=max(1, _int(env, "RETENTION_WARNING_DAYS", 30)),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            zendesk_api_base=_zendesk_base(env, app_env),
            zendesk_email=env.get("ZENDESK_EMAIL", "").strip(),
            zendesk_api_token=env.get("ZENDESK_API_TOKEN", "").strip(),
            intercom_api_base=_processor_base(env, "INTERCOM_API_BASE", INTERCOM_API, app_env),
            intercom_token=env.get("INTERCOM_TOKEN", "").strip(),
            hubspot_api_base=_processor_base(env, "HUBSPOT_API_BASE", HUBSPOT_API, app_env),
            hubspot_token=env.get("HUBSPOT_TOKEN", "").strip(),
            hubspot_subscription_id=env.get("HUBSPOT_SUBSCRIPTION_ID", "").strip(),
            unsubscribe_signing_key=_key(env, "UNSUBSCRIBE_SIGNING_KEY"),
            processors_disabled=_disabled_processors(env),
            processor_timeout_seconds=_int(env, "PROCESSOR_TIMEOUT_SECONDS", 10),
            stripe_secret_key=env.get("STRIPE_SECRET_KEY", "").strip(),
            stripe_webhook_secrets=webhook_secrets,
            stripe_api_base=stripe_api_base,
            stripe_timeout_seconds=_int(env, "STRIPE_TIMEOUT_SECONDS", 10),
            billing_plans_file=env.get("BILLING_PLANS_FILE", "").strip(),
            billing_plans_json=env.get("BILLING_PLANS_JSON", "").strip(),
        )


_lock = threading.Lock()
_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read once (cold start) and shared by every request thread."""
    global _settings
    if _settings is None:
        with _lock:
            if _settings is None:
                _settings = Settings.from_env()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment)."""
    global _settings
    with _lock:
        _settings = None
