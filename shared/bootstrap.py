"""The composition root: the one place that wires adapters into services (Cosmic Python).

Entry points ask for a service here; tests swap adapters by building services with `build_*`
directly. Everything is created on first use and shared by the request threads of an instance, so
a cold start pays only for what the function it serves touches.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from shared.adapters.firestore import firestore_client
from shared.adapters.google_identity import FirebaseGoogleVerifier
from shared.adapters.mail import SmtpMailer
from shared.config import Settings, get_settings
from shared.identity.passwords import PasswordHasher
from shared.identity.service import IdentityService, utcnow
from shared.observability import configure_logging

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


def reset() -> None:
    """Forget every wired service (tests that change the environment)."""
    with _lock:
        _identity_service.cache_clear()
