"""The webhook route: verify, handle once, and answer so that Stripe retries exactly when it should.

- 400: unsigned, tampered, stale (over 300 s) or signed with a secret we do not hold; nothing changed;
- 200: handled, a duplicate, parked (unknown customer) or a type we do not handle;
- 409: the same event is being handled by another delivery right now (Stripe comes back later);
- 503: Stripe or Firestore unavailable; 500: anything else. Stripe retries both for three days.
"""

from __future__ import annotations

from typing import Any

from functions.stripe_webhook import schemas
from shared.billing.service import is_transient
from shared.billing.webhook import InvalidSignature
from shared.bootstrap import billing_service
from shared.http import Request, Response, Router
from shared.http.problems import Problem, bad_request, unavailable
from shared.idempotency import InProgress

router = Router()


@router.get("/stripe-webhook/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.post("/stripe-webhook", raw_body=True, response=schemas.ReceivedAnswer, problems=(409, 503))
def receive(req: Request, payload: bytes) -> Response | dict[str, Any]:
    """A Stripe event, verified by its `Stripe-Signature` and handled once.

    400 when the signature does not verify (nothing changed); 409 while another delivery of the same event
    is being handled; 503 when Stripe or the database is unavailable. Stripe retries 409 and 5xx.
    """
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
