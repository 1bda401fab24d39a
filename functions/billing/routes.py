"""Routes of the billing function: each translates a request into one billing-service call."""

from __future__ import annotations

from typing import Any

from functions.billing import schemas
from shared.bootstrap import billing_service
from shared.http import Request, Router
from shared.identity.model import Principal

router = Router()


@router.get("/billing/health")
def health(_: Request) -> dict[str, str]:
    return {"status": "ok"}


@router.get("/billing", auth=True)
def view(req: Request) -> dict[str, Any]:
    principal: Principal = req.principal
    return billing_service().view(principal.account)


@router.post("/billing/checkout", body=schemas.CheckoutBody, auth=True)
def checkout(req: Request, body: schemas.CheckoutBody) -> dict[str, str]:
    principal: Principal = req.principal
    return {"url": billing_service().checkout(principal.account, body.price)}


@router.post("/billing/portal", auth=True)
def portal(req: Request) -> dict[str, str]:
    principal: Principal = req.principal
    return {"url": billing_service().portal(principal.account)}
