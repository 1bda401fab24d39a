"""The webhook route: verify, handle once, and answer so that Stripe retries exactly when it should.

- 400: unsigned, tampered, stale (over 300 s) or signed with a secret we do not hold; nothing changed;
- 200: handled, a duplicate, parked (unknown customer) or a type we do not handle;
- 409: the same event is being handled by another delivery right now (Stripe comes back later);
- 503: Stripe or Firestore unavailable; 500: anything else. Stripe retries both for three days.
"""

from __future__ import annotations

from typing import Any

from shared.billing.service import is_transient
from shared.billing.webhook import InvalidSignature
from shared.bootstrap import billing_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem, bad_request, unavailable
from shared.idempotency import InProgress

router = Router()


@router.get("/stripe-webhook/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.post("/stripe-webhook", raw_body=True)
def receive(req: Request, payload: bytes) -> Response | dict[str, Any]:
    try:
        outcome = billing_service().handle_webhook(payload, req.raw.headers.get("Stripe-Signature"))
    except InvalidSignature as exc:
        raise bad_request("invalid-signature", f"The Stripe-Signature does not verify: {exc}.") from None
    except InProgress as exc:
        raise Problem(
            409,
            "event-in-progress",
            "Conflict",
            "This event is being handled by another delivery; retry later.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except Exception as exc:
        if is_transient(exc):
            raise unavailable("dependency-unavailable", "Stripe or the database is unavailable; retry later.") from None
        raise
    return {"received": True, "outcome": outcome}
