"""Opaque tokens and keyed digests (P1, P21): secrets are stored only as hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_token() -> str:
    """256 random bits, URL-safe: session tokens, verification and reset links."""
    return secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    """An opaque, unguessable identifier that carries no personal data (e.g. `acc_…`)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def token_hash(token: str) -> str:
    """SHA-256 of a token: what Firestore keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def email_key(email: str) -> str:
    """The document id of the email index: a digest, so no address appears in a document path."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def keyed_digest(key: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of `value` for one purpose: known devices, throttle keys (no raw IP kept)."""
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


class SecretBox:
    """AES-256-GCM for the few secrets that must be read back (TOTP seeds)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(key).digest())

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, token: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        return self._aead.decrypt(raw[:12], raw[12:], context.encode("utf-8")).decode("utf-8")
