"""The answers of the stripe-webhook function (its body is Stripe's raw event, verified by signature)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    """Base of the success answers: they list every field they carry."""

    model_config = ConfigDict(extra="forbid")


class HealthAnswer(Answer):
    status: Literal["ok"]


class ReceivedAnswer(Answer):
    """The event is handled: Stripe stops retrying it."""

    received: Literal[True]
    outcome: Literal["processed", "duplicate", "ignored", "parked", "erased"] = Field(
        description="processed; duplicate (handled before); ignored (a type not handled); parked (an unknown "
        "customer, kept for later); erased (the account is gone)."
    )
