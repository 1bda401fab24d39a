"""Request bodies of the billing function, validated by pydantic (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

PriceId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[\w\-]+$")]


class CheckoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: PriceId
