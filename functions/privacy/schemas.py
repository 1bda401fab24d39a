"""Request bodies of the privacy function, validated by pydantic (unknown fields refused)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateRequestBody(Strict):
    type: Literal["export", "erasure"]
    # Erasure only: re-authentication of a password account (a Google account may sign in again instead).
    current_password: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
