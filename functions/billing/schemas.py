"""Request bodies of the billing function, validated by pydantic (unknown fields refused), and its answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

PriceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[\w\-]+$")]


class CheckoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: PriceId


# -- answers (documentation: the OpenAPI `response=` models) ---------------------------------------------------------


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class HealthAnswer(Answer):
    status: Literal["ok"]


class BillingAnswer(Answer):
    """The account's plan, subscription status and billing contact (no payment data: Stripe holds it, P13)."""

    plan: str = Field(description="The plan's id (the default plan without a subscription).")
    plan_name: str
    status: str = Field(description='The subscription status as Stripe reports it ("none" without one).')
    current_period_end: datetime | None
    cancel_at_period_end: bool
    billing_contact: dict[str, Any] = Field(
        description="The billing contact: Stripe's (name, email, address) once known, else the profile's."
    )
    entitlements: list[str]
    has_billing_account: bool = Field(description="Whether a Stripe customer exists (the portal needs one).")


class RedirectAnswer(Answer):
    """Where to send the browser: a Stripe-hosted page."""

    url: str
