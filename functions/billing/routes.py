"""Routes of the billing function: each translates a request into one billing-service call."""

from __future__ import annotations

from typing import Any

from functions.billing import schemas
from shared.bootstrap import billing_service
from shared.http import Request, Router
from shared.identity.model import Principal

router = Router()


@router.get("/billing/health", response=schemas.HealthAnswer)
def health(_: Request) -> dict[str, str]:
    """Liveness: the function answers."""
    return {"status": "ok"}


@router.get("/billing", auth=True, response=schemas.BillingAnswer)
def view(req: Request) -> dict[str, Any]:
    """The caller's plan, subscription status, entitlements and billing contact."""
    principal: Principal = req.principal
    return billing_service().view(principal.account)


@router.post(
    "/billing/checkout", body=schemas.CheckoutBody, auth=True, response=schemas.RedirectAnswer, problems=(409,)
)
def checkout(req: Request, body: schemas.CheckoutBody) -> dict[str, str]:
    """A Stripe Checkout page for a subscription to a catalogue price (409 when already subscribed)."""
    principal: Principal = req.principal
    return {"url": billing_service().checkout(principal.account, body.price)}


@router.post("/billing/portal", auth=True, response=schemas.RedirectAnswer, problems=(409,))
def portal(req: Request) -> dict[str, str]:
    """A Stripe Billing Portal page to manage the subscription (409 before any subscription)."""
    principal: Principal = req.principal
    return {"url": billing_service().portal(principal.account)}
