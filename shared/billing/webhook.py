"""Verify a Stripe webhook delivery: `Stripe-Signature` over the raw body (P13).

Stripe signs `"<t>.<raw body>"` with HMAC-SHA256 under the endpoint's signing secret. The stripe
library checks the signature and that `t` is no older than the tolerance (300 s, Stripe's default
against replays). During a rotation of the signing secret Stripe signs every delivery with both the
old and the new secret, so each configured secret is tried in turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import stripe


class InvalidSignature(Exception):
    """Unsigned, tampered, stale or signed with a secret we do not hold."""


def verify_event(payload: bytes, header: str | None, secrets: Sequence[str], tolerance: int = 300) -> dict[str, Any]:
    """The event, once its signature checks out under one of `secrets`; else `InvalidSignature`."""
    if not header:
        raise InvalidSignature("no Stripe-Signature header")
    if not secrets:
        raise InvalidSignature("no signing secret configured")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("body is not UTF-8") from None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc):
                raise InvalidSignature("timestamp outside the tolerance") from None
            continue
        try:
            event = json.loads(text)
        except ValueError:
            raise InvalidSignature("signed body is not JSON") from None
        if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
            raise InvalidSignature("signed body is not a Stripe event")
        return event
    raise InvalidSignature("no signature matches")
