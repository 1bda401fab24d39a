"""Request bodies of the admin function, validated by pydantic (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
AccountId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DpoErasureBody(Strict):
    account_id: AccountId
    reason: Reason


class RetryBody(Strict):
    reason: Reason


class RolesBody(Strict):
    roles: Annotated[list[Literal["admin", "dpo", "support"]], Field(max_length=3)]
    reason: Reason


class SecondFactorRemovalBody(Strict):
    """Why support removes the second factor: the ticket and how the holder's identity was checked."""

    reason: Reason
